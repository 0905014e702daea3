// An in-memory Origin Private File System for the tests of opfsStorage in Node, shaped like
// the browser's (FileSystemDirectoryHandle / FileSystemFileHandle / FileSystemWritableFileStream,
// DOMExceptions by name), with what the tests need to watch: reads counted, failures
// injected, and move() present for files and folders, for files only, or not at all.
import type { OpfsDirectoryHandle, OpfsFileHandle, OpfsWritable, WebLocks } from './index.js';

class DirNode {
  readonly children = new Map<string, DirNode | FileNode>();
}
class FileNode {
  data: Uint8Array = new Uint8Array(0);
}

/**
 * What the browser can move: 'all' (files and folders, as Firefox), 'files' (folders have
 * move() but it rejects, as Chromium has shipped it), 'none' (no move() at all).
 */
export type FakeMoves = 'all' | 'files' | 'none';

type WriteChunk =
  | Uint8Array
  | ArrayBuffer
  | string
  | { type: 'write'; position?: number; data: Uint8Array | string }
  | { type: 'seek'; position: number }
  | { type: 'truncate'; size: number };

const encoder = new TextEncoder();

function checkEntryName(name: string): void {
  if (name === '' || name === '.' || name === '..' || /[/\\]/.test(name)) {
    throw new TypeError(`Name is not allowed: ${JSON.stringify(name)}`);
  }
}

export class FakeOpfs {
  /** arrayBuffer() calls: a file's bytes read. */
  reads = 0;
  /**
   * Called before each write to a writable and each close(), with the file's name: a
   * DOMException it returns is thrown there (e.g. QuotaExceededError).
   */
  fail: ((operation: 'write' | 'close', file: string) => DOMException | undefined) | undefined;
  readonly root: FakeDirectoryHandle;

  constructor(readonly moves: FakeMoves = 'all') {
    this.root = new FakeDirectoryHandle(this, new DirNode(), undefined, '');
  }

  /** The tree as path → bytes (folders end with '/'), for assertions. */
  snapshot(): Map<string, Uint8Array | 'dir'> {
    const out = new Map<string, Uint8Array | 'dir'>();
    const walk = (node: DirNode, prefix: string) => {
      for (const [name, child] of [...node.children].sort(([a], [b]) => (a < b ? -1 : 1))) {
        if (child instanceof DirNode) {
          out.set(`${prefix}${name}/`, 'dir');
          walk(child, `${prefix}${name}/`);
        } else {
          out.set(`${prefix}${name}`, child.data);
        }
      }
    };
    walk(this.root.node, '');
    return out;
  }
}

abstract class FakeHandle {
  abstract readonly kind: 'file' | 'directory';

  constructor(
    readonly fs: FakeOpfs,
    readonly node: DirNode | FileNode,
    public parent: DirNode | undefined,
    public name: string,
  ) {}

  /** A handle whose entry was removed (or replaced) fails, as the browser's do. */
  protected attached(): void {
    if (this.parent && this.parent.children.get(this.name) !== this.node) {
      throw new DOMException(`${this.name}: no longer exists`, 'NotFoundError');
    }
  }

  protected async moveTo(destination: unknown, newName?: string): Promise<void> {
    let target: FakeDirectoryHandle;
    if (typeof destination === 'string') {
      if (!this.parent) throw new DOMException('cannot move the root', 'InvalidModificationError');
      target = new FakeDirectoryHandle(this.fs, this.parent, undefined, '');
      newName = destination;
    } else {
      target = destination as FakeDirectoryHandle;
      newName ??= this.name;
    }
    checkEntryName(newName);
    this.attached();
    if (!this.parent) throw new DOMException('cannot move the root', 'InvalidModificationError');
    const existing = target.node.children.get(newName);
    if (existing === this.node) return;
    if (existing && (existing instanceof DirNode || this.node instanceof DirNode)) {
      throw new DOMException(`${newName}: exists`, 'InvalidModificationError');
    }
    for (let up: DirNode | undefined = target.node; up; up = parentOf(this.fs.root.node, up)) {
      if (up === this.node) {
        throw new DOMException('cannot move a folder into itself', 'InvalidModificationError');
      }
    }
    this.parent.children.delete(this.name);
    target.node.children.set(newName, this.node);
    this.parent = target.node;
    this.name = newName;
  }
}

function parentOf(root: DirNode, node: DirNode): DirNode | undefined {
  for (const child of root.children.values()) {
    if (!(child instanceof DirNode)) continue;
    if (child === node) return root;
    const found = parentOf(child, node);
    if (found) return found;
  }
  return undefined;
}

export class FakeDirectoryHandle extends FakeHandle implements OpfsDirectoryHandle {
  readonly kind = 'directory' as const;
  declare readonly node: DirNode;
  move?: (destination: OpfsDirectoryHandle, newName: string) => Promise<void>;

  constructor(fs: FakeOpfs, node: DirNode, parent: DirNode | undefined, name: string) {
    super(fs, node, parent, name);
    if (fs.moves === 'all') this.move = (d, n) => this.moveTo(d, n);
    if (fs.moves === 'files') {
      this.move = async () => {
        throw new DOMException('moving directories is not supported', 'NotSupportedError');
      };
    }
  }

  async getDirectoryHandle(
    name: string,
    options: { create?: boolean } = {},
  ): Promise<FakeDirectoryHandle> {
    checkEntryName(name);
    this.attached();
    let child = this.node.children.get(name);
    if (child instanceof FileNode) throw new DOMException(`${name}: a file`, 'TypeMismatchError');
    if (!child) {
      if (!options.create) throw new DOMException(`${name}: not found`, 'NotFoundError');
      child = new DirNode();
      this.node.children.set(name, child);
    }
    return new FakeDirectoryHandle(this.fs, child, this.node, name);
  }

  async getFileHandle(name: string, options: { create?: boolean } = {}): Promise<FakeFileHandle> {
    checkEntryName(name);
    this.attached();
    let child = this.node.children.get(name);
    if (child instanceof DirNode) throw new DOMException(`${name}: a folder`, 'TypeMismatchError');
    if (!child) {
      if (!options.create) throw new DOMException(`${name}: not found`, 'NotFoundError');
      child = new FileNode();
      this.node.children.set(name, child);
    }
    return new FakeFileHandle(this.fs, child, this.node, name);
  }

  async removeEntry(name: string, options: { recursive?: boolean } = {}): Promise<void> {
    checkEntryName(name);
    this.attached();
    const child = this.node.children.get(name);
    if (!child) throw new DOMException(`${name}: not found`, 'NotFoundError');
    if (child instanceof DirNode && child.children.size > 0 && !options.recursive) {
      throw new DOMException(`${name}: not empty`, 'InvalidModificationError');
    }
    this.node.children.delete(name);
  }

  async *entries(): AsyncIterableIterator<[string, FakeDirectoryHandle | FakeFileHandle]> {
    this.attached();
    for (const [name, child] of [...this.node.children]) {
      yield [
        name,
        child instanceof DirNode
          ? new FakeDirectoryHandle(this.fs, child, this.node, name)
          : new FakeFileHandle(this.fs, child, this.node, name),
      ];
    }
  }

  async *keys(): AsyncIterableIterator<string> {
    for await (const [name] of this.entries()) yield name;
  }

  async *values(): AsyncIterableIterator<FakeDirectoryHandle | FakeFileHandle> {
    for await (const [, handle] of this.entries()) yield handle;
  }
}

export class FakeFileHandle extends FakeHandle implements OpfsFileHandle {
  readonly kind = 'file' as const;
  declare readonly node: FileNode;
  move?: (destination: OpfsDirectoryHandle, newName: string) => Promise<void>;

  constructor(fs: FakeOpfs, node: FileNode, parent: DirNode | undefined, name: string) {
    super(fs, node, parent, name);
    if (fs.moves !== 'none') this.move = (d, n) => this.moveTo(d, n);
  }

  async getFile() {
    this.attached();
    const data = this.node.data; // a snapshot: writes replace the array, never change it
    const fs = this.fs;
    return {
      name: this.name,
      size: data.length,
      type: '',
      lastModified: Date.now(),
      async arrayBuffer(): Promise<ArrayBuffer> {
        fs.reads++;
        return data.slice().buffer;
      },
      async text(): Promise<string> {
        fs.reads++;
        return new TextDecoder().decode(data);
      },
    };
  }

  async createWritable(options: { keepExistingData?: boolean } = {}): Promise<FakeWritable> {
    this.attached();
    return new FakeWritable(this, options.keepExistingData ? this.node.data.slice() : undefined);
  }

  /** Commits a writable's swap file (what close() does in the browser). */
  commit(data: Uint8Array): void {
    this.attached();
    this.node.data = data;
  }
}

/** Writes go to a swap buffer; close() commits it whole, abort() drops it. */
class FakeWritable implements OpfsWritable {
  private swap: Uint8Array;
  private position = 0;
  private state: 'open' | 'closed' | 'aborted' = 'open';

  constructor(
    private readonly file: FakeFileHandle,
    existing: Uint8Array | undefined,
  ) {
    this.swap = existing ?? new Uint8Array(0);
  }

  async write(chunk: WriteChunk): Promise<void> {
    this.checkOpen();
    const failure = this.file.fs.fail?.('write', this.file.name);
    if (failure) {
      this.state = 'aborted'; // a stream that errored stays errored
      throw failure;
    }
    if (typeof chunk === 'object' && 'type' in chunk) {
      if (chunk.type === 'seek') return this.seek(chunk.position);
      if (chunk.type === 'truncate') return this.truncate(chunk.size);
      if (chunk.position !== undefined) this.position = chunk.position;
      chunk = chunk.data;
    }
    const bytes =
      typeof chunk === 'string'
        ? encoder.encode(chunk)
        : chunk instanceof ArrayBuffer
          ? new Uint8Array(chunk)
          : chunk;
    const end = this.position + bytes.length;
    if (end > this.swap.length) {
      const grown = new Uint8Array(end);
      grown.set(this.swap);
      this.swap = grown;
    }
    this.swap.set(bytes, this.position);
    this.position = end;
  }

  async seek(position: number): Promise<void> {
    this.checkOpen();
    this.position = position;
  }

  async truncate(size: number): Promise<void> {
    this.checkOpen();
    const resized = new Uint8Array(size);
    resized.set(this.swap.subarray(0, size));
    this.swap = resized;
    this.position = Math.min(this.position, size);
  }

  async close(): Promise<void> {
    this.checkOpen();
    const failure = this.file.fs.fail?.('close', this.file.name);
    this.state = 'closed';
    if (failure) throw failure;
    this.file.commit(this.swap);
  }

  async abort(): Promise<void> {
    this.state = 'aborted';
  }

  private checkOpen(): void {
    if (this.state !== 'open') throw new TypeError(`the stream is ${this.state}`);
  }
}

/** navigator.locks with ifAvailable, as one origin shares it among its tabs and workers. */
export class FakeLocks implements WebLocks {
  readonly held = new Set<string>();

  async request(
    name: string,
    _options: { ifAvailable: true },
    callback: (lock: object | null) => Promise<void> | undefined,
  ): Promise<unknown> {
    await Promise.resolve(); // the browser calls back in a later task
    if (this.held.has(name)) return callback(null);
    this.held.add(name);
    try {
      return await callback({ name, mode: 'exclusive' });
    } finally {
      this.held.delete(name);
    }
  }
}
