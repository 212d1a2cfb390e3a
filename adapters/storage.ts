import { decodeFrame, encodeFrame } from '../src/protocol';
import type { OutboxStore, StoredMessage } from '../src/qos-outbox';

/** A key-value store with the `localStorage` shape; each method may also return a Promise. */
export interface KeyValueStorage {
  getItem(key: string): string | null | undefined | Promise<string | null | undefined>;
  setItem(key: string, value: string): void | Promise<void>;
  removeItem(key: string): void | Promise<void>;
}

/**
 * A durable outbox for `IMClient({ outboxStore })` over any {@link KeyValueStorage}: `localStorage`
 * as it is, or the wrappers below for mini-programs and HarmonyOS. One key per user id; writes are
 * applied in order, even on an asynchronous storage.
 *
 * @example
 * new IMClient({ url, adapter: createBrowserAdapter(), outboxStore: createOutboxStore(localStorage) });
 */
export function createOutboxStore(storage: KeyValueStorage, options: { prefix?: string } = {}): OutboxStore {
  const prefix = options.prefix ?? 'mobileimsdk.outbox.';
  let queue: Promise<unknown> = Promise.resolve();
  return {
    async load(userId) {
      await queue;
      const text = await storage.getItem(prefix + userId);
      if (!text) return [];
      const rows = JSON.parse(text) as Array<{ frame: string; at: number }>;
      const out: StoredMessage[] = [];
      for (const row of Array.isArray(rows) ? rows : []) {
        try {
          out.push({ frame: decodeFrame(row.frame), enqueuedAt: Number(row.at) || 0 });
        } catch {
          // A damaged entry is skipped; the others are still delivered.
        }
      }
      return out;
    },
    save(userId, messages) {
      const key = prefix + userId;
      const text = JSON.stringify(messages.map((m) => ({ frame: encodeFrame(m.frame), at: m.enqueuedAt })));
      const write = () => (messages.length ? storage.setItem(key, text) : storage.removeItem(key));
      const next = queue.then(write, write);
      queue = next.catch(() => undefined);
      return next;
    },
  };
}

/** The synchronous storage API of WeChat (`wx`), uni-app (`uni`) and Douyin (`tt`) mini-programs. */
export interface SyncStorageApi {
  getStorageSync(key: string): unknown;
  setStorageSync(key: string, data: string): void;
  removeStorageSync(key: string): void;
}

/** Wraps `wx`, `uni` or `tt` (`setStorageSync(key, data)` …) as a {@link KeyValueStorage}. */
export function fromSyncStorage(api: SyncStorageApi): KeyValueStorage {
  return {
    // getStorageSync returns '' for a missing key (WeChat docs, wx.getStorageSync).
    getItem: (key) => {
      const v = api.getStorageSync(key);
      return typeof v === 'string' && v !== '' ? v : null;
    },
    setItem: (key, value) => api.setStorageSync(key, value),
    removeItem: (key) => api.removeStorageSync(key),
  };
}

/** Alipay's object-argument storage API (`my.setStorageSync({ key, data })` …). */
export interface AlipayStorageApi {
  getStorageSync(options: { key: string }): { data?: unknown } | null | undefined;
  setStorageSync(options: { key: string; data: string }): unknown;
  removeStorageSync(options: { key: string }): unknown;
}

/** Wraps Alipay's `my` as a {@link KeyValueStorage}. */
export function fromAlipayStorage(my: AlipayStorageApi): KeyValueStorage {
  return {
    getItem: (key) => {
      const r = my.getStorageSync({ key });
      return r && typeof r.data === 'string' ? r.data : null;
    },
    setItem: (key, data) => void my.setStorageSync({ key, data }),
    removeItem: (key) => void my.removeStorageSync({ key }),
  };
}

/** The part of a HarmonyOS `@ohos.data.preferences` instance the store uses. */
export interface HarmonyPreferences {
  get(key: string, defValue: string): Promise<unknown>;
  put(key: string, value: string): Promise<void>;
  delete(key: string): Promise<void>;
  flush(): Promise<void>;
}

/** Wraps HarmonyOS preferences as a {@link KeyValueStorage}; every write is flushed to disk. */
export function fromHarmonyPreferences(prefs: HarmonyPreferences): KeyValueStorage {
  return {
    getItem: async (key) => {
      const v = await prefs.get(key, '');
      return typeof v === 'string' && v !== '' ? v : null;
    },
    setItem: async (key, value) => {
      await prefs.put(key, value);
      await prefs.flush();
    },
    removeItem: async (key) => {
      await prefs.delete(key);
      await prefs.flush();
    },
  };
}
