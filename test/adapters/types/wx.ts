/** Type test: the wx adapter accepts the official `wx` typing (miniprogram-api-typings). */
/// <reference types="miniprogram-api-typings" />
import { createWxAdapter } from '../../../adapters/wx';
import type { SocketAdapter } from '../../../src/transport';

export const adapter: SocketAdapter = createWxAdapter(wx);

// @ts-expect-error an object without connectSocket is not a wx object
createWxAdapter({ onAppShow() {}, onAppHide() {}, onNetworkStatusChange() {} });
