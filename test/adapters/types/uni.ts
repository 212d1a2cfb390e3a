/** Type test: the uni adapter accepts the official `uni` typing (@dcloudio/types). */
/// <reference types="@dcloudio/types" />
import { createUniAdapter } from '../../../adapters/uni';
import type { SocketAdapter } from '../../../src/transport';

export const adapter: SocketAdapter = createUniAdapter(uni);

// @ts-expect-error an object without connectSocket is not a uni object
createUniAdapter({ onAppShow() {}, onAppHide() {}, onNetworkStatusChange() {} });
