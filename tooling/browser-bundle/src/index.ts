// Test support for the packages whose root entry must run in browsers (data, checkpoint,
// trainer, export-onnx): bundle an entry for the browser as a page's Vite build would —
// through the workspace packages' sources, as the monorepo's tests read them — and list
// every Node built-in it reaches. One check, used by each package's browser-safety test.
import { builtinModules } from 'node:module';
import { build, defaultClientConditions, type Plugin, type Rollup } from 'vite';

const builtins = new Set(builtinModules);

export interface BrowserBundle {
  /** Each `importer → specifier` of a Node built-in, importers relative to the package. */
  readonly nodeImports: readonly string[];
  /** The modules the bundle holds (absolute ids). */
  readonly modules: readonly string[];
  /** The bundle's code. */
  readonly code: string;
}

export interface BundleOptions {
  /**
   * Modules left out of the bundle, e.g. TensorFlow.js, which is made for browsers and
   * whose size would only slow the check (its seedrandom's guarded require('crypto') is
   * not ours to judge).
   */
  readonly external?: ReadonlyArray<string | RegExp>;
}

/** Bundles `entry` (relative to `packageDir`) for the browser platform, without writing it. */
export async function bundleForBrowser(
  packageDir: string,
  entry: string,
  options: BundleOptions = {},
): Promise<BrowserBundle> {
  const root = packageDir.endsWith('/') ? packageDir : `${packageDir}/`;
  const nodeImports: string[] = [];
  const recordNodeImports: Plugin = {
    name: 'record-node-imports',
    enforce: 'pre',
    resolveId(specifier, importer) {
      if (specifier.startsWith('node:') || builtins.has(specifier.split('/')[0]!)) {
        const from = importer?.startsWith(root) ? importer.slice(root.length) : (importer ?? '?');
        nodeImports.push(`${from} → ${specifier}`);
        return { id: specifier, external: true };
      }
      return null;
    },
  };
  const output = (await build({
    configFile: false,
    logLevel: 'silent',
    root,
    plugins: [recordNodeImports],
    resolve: { conditions: ['@minigpt/source', ...defaultClientConditions] },
    build: {
      write: false,
      minify: false,
      lib: { entry, formats: ['es'], fileName: 'bundle' },
      rollupOptions: {
        // Optional peers imported by name at run time are not part of the bundle.
        external: [/^@tensorflow\/tfjs-node/, 'webgpu', ...(options.external ?? [])],
      },
    },
  })) as Rollup.RollupOutput | Rollup.RollupOutput[];
  const chunks = (Array.isArray(output) ? output : [output]).flatMap((result) => result.output);
  return {
    nodeImports,
    modules: chunks.flatMap((chunk) => (chunk.type === 'chunk' ? chunk.moduleIds : [])),
    code: chunks.map((chunk) => (chunk.type === 'chunk' ? chunk.code : '')).join('\n'),
  };
}
