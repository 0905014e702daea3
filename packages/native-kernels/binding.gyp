{
  "targets": [
    {
      "target_name": "minigpt_kernels",
      "sources": ["native/gemm.cc"],
      "cflags_cc!": ["-fno-exceptions"],
      # -fno-math-errno: sqrt may then be a vector instruction (nothing here reads errno).
      # Threads are std::thread (native/gemm.cc's Pool), not OpenMP: node-gyp adds -pthread.
      "cflags_cc": ["-O3", "-march=native", "-fno-math-errno", "-std=c++17"],
      "xcode_settings": {
        "OTHER_CPLUSPLUSFLAGS": ["-O3", "-std=c++17"]
      }
    }
  ]
}
