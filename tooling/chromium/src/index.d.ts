import type { Browser } from 'playwright-core';

/** Where Chromium is: Debian's package, or MINIGPT_CHROMIUM. */
export declare const CHROMIUM_PATH: string;

/** Headless Chromium with the flags every page test uses, plus `args`. */
export declare function launchChromium(options?: {
  readonly args?: readonly string[];
}): Promise<Browser>;

/** An example's production build, served on 127.0.0.1. */
export interface ServedPage {
  readonly url: string;
  close(): Promise<void>;
}

/** Builds the Vite project at `root` and serves the build with `vite preview`. */
export declare function servePage(root: string): Promise<ServedPage>;
