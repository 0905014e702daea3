{
  "targets": [
    {
      "target_name": "minigpt_kernels",
      "sources": ["native/gemm.cc"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-O3", "-march=native", "-fopenmp", "-std=c++17"],
      "ldflags": ["-fopenmp"],
      "xcode_settings": {
        "OTHER_CPLUSPLUSFLAGS": ["-O3", "-std=c++17"]
      }
    }
  ]
}
