// Types of scripts/build-wasm.mjs, for kernels-wasm.test.ts (the package's TypeScript does
// not check JavaScript).
/** The clang flags the module is built with. */
export declare const CLANG_ARGS: readonly string[];
/** The module's bytes, compiled now from csrc/kernels.c (throws when clang cannot). */
export declare function compileKernels(clang?: string): Buffer;
/** The TypeScript module that carries `bytes` (src/kernels-wasm.ts's text). */
export declare function kernelsModuleSource(bytes: Buffer): string;
