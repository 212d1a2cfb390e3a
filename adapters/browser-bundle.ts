/** Everything the UMD bundle exposes on the global `MobileIMSDK`: the core plus the browser adapter. */
export * from '../src/index';
export { createBrowserAdapter } from './browser';
export type { BrowserAdapterOptions, WebSocketConstructor, WebSocketLike } from './browser';
