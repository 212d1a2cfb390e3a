import type { Browser, BrowserContext, Page } from 'playwright-core';
import { expect } from 'vitest';
import { screenshotPath, type ServerProcess } from './harness';

const PHONE = { viewport: { width: 390, height: 760 }, isMobile: true, hasTouch: true };
const DESKTOP = { viewport: { width: 1000, height: 680 } };

/**
 * One chat page of a demo, driven through what a user sees. Both demos use the same class names
 * (`.f-user`, `.b-login`, `.state[data-state]`, `.msg[data-dir][data-status]`, ...); the uni-app build wraps
 * inputs in its own elements, hence `input.x, .x input`.
 */
export class ChatPage {
  constructor(readonly page: Page, readonly name: string) {}

  /** Opens a page in a new browser context (its own cookies, storage and sockets). */
  static async open(browser: Browser, url: string, name: string, phone = false): Promise<{ chat: ChatPage; context: BrowserContext }> {
    const context = await browser.newContext({ ...(phone ? PHONE : DESKTOP), deviceScaleFactor: 1 });
    // The tests never leave this machine (uni-app's framework CSS preloads an image from its CDN).
    await context.route(/^https?:\/\/(?!127\.0\.0\.1[:/]|localhost[:/])/, (route) => route.abort());
    const page = await context.newPage();
    const chat = new ChatPage(page, name);
    page.on('pageerror', (err) => chat.pageErrors.push(err.message));
    page.on('response', (res) => {
      if (res.status() >= 400) chat.failedRequests.push(`${res.status()} ${res.url()}`);
    });
    await page.goto(url);
    return { chat, context };
  }

  readonly pageErrors: string[] = [];
  /** Requests the page made that failed with an HTTP error (a missing favicon included). */
  readonly failedRequests: string[] = [];

  /** The height of the header bar in CSS pixels. */
  async barHeight(): Promise<number> {
    return (await this.page.locator('.bar').boundingBox())?.height ?? -1;
  }

  private input(cls: string) {
    return this.page.locator(`input.${cls}, .${cls} input`).first();
  }

  /** Fills the login form and waits until the state badge says online. */
  async login(serverUrl: string, userId: string): Promise<void> {
    await this.input('f-server').fill(serverUrl);
    await this.input('f-user').fill(userId);
    await this.page.locator('.b-login').click();
    await this.waitForState('online');
  }

  /** Waits until the state badge carries `data-state="<state>"`. */
  async waitForState(state: string, timeout = 10000): Promise<void> {
    await this.page.locator(`.state[data-state="${state}"]`).waitFor({ timeout });
  }

  /** The state badge's text. */
  stateText(): Promise<string> {
    return this.page.locator('.state').innerText();
  }

  /** Writes a message in the composer and presses Send. */
  async send(to: string, text: string): Promise<void> {
    await this.input('f-to').fill(to);
    await this.input('f-text').fill(text);
    await this.page.locator('.b-send').click();
  }

  /** The rows showing `text`, of one direction (out, in, push) and optionally one status. */
  rows(dir: string, text: string, status?: string) {
    const sel = status ? `.msg[data-dir="${dir}"][data-status="${status}"]` : `.msg[data-dir="${dir}"]`;
    return this.page.locator(sel).filter({ has: this.page.locator('.msg-text', { hasText: text }) });
  }

  /** Waits until exactly one row of `dir` shows `text` (with `status` when given). */
  async waitForRow(dir: string, text: string, status?: string, timeout = 10000): Promise<void> {
    await this.rows(dir, text, status).first().waitFor({ timeout });
  }

  /** Saves a screenshot under the flow's screenshot folder and returns its path. */
  async screenshot(name: string): Promise<string> {
    const path = screenshotPath(name);
    await this.page.screenshot({ path });
    return path;
  }
}

/** Numbers a flow measured, printed by the tests. */
export interface FlowNumbers {
  deliveredMs: number;
  reconnectMs: number;
  outageDeliveredMs: number;
  pushMs: number;
}

/**
 * The flow both demos go through against the real server: two users chat with receipts, the server is
 * killed and restarted, an admin-API push arrives, and a third tab logging in as alice kicks the first.
 * Each step is a test; they share pages and run in order.
 */
export function chatFlowSteps(ctx: {
  browser: () => Browser;
  server: () => ServerProcess;
  pageUrl: () => string;
  label: string;
}) {
  const contexts: BrowserContext[] = [];
  let alice: ChatPage;
  let bob: ChatPage;
  const numbers: Partial<FlowNumbers> = {};

  const open = async (name: string, phone: boolean) => {
    const { chat, context } = await ChatPage.open(ctx.browser(), ctx.pageUrl(), `${ctx.label}-${name}`, phone);
    contexts.push(context);
    return chat;
  };

  return {
    numbers,
    pages: () => ({ alice, bob }),

    /** Closes every browser context the flow opened. */
    async close(): Promise<void> {
      await Promise.all(contexts.splice(0).map((c) => c.close()));
    },

    async twoUsersChat(): Promise<void> {
      alice = await open('alice', true);
      bob = await open('bob', false);
      await alice.login(ctx.server().wsUrl, 'alice');
      await bob.login(ctx.server().wsUrl, 'bob');
      await alice.page.locator('.rtt', { hasText: /echo \d+ ms/ }).waitFor();

      const hello = 'hello bob <img src=x onerror="window.__injected=1"> & <b>not bold</b>';
      const t0 = Date.now();
      await alice.send('bob', hello);
      await alice.waitForRow('out', 'hello bob', 'delivered');
      numbers.deliveredMs = Date.now() - t0;
      await bob.waitForRow('in', 'hello bob');
      // ✓✓: bob's device ACKed it and the server forwarded that receipt to alice (a device receipt).
      await alice.rows('out', 'hello bob').and(alice.page.locator('[data-receipt="received"]')).waitFor();
      expect(await alice.rows('out', 'hello bob').locator('.msg-status').innerText()).toBe('received ✓✓');
      expect(await bob.rows('in', 'hello bob').locator('.msg-text').innerText()).toBe(hello);
      expect(await bob.page.evaluate(() => (window as unknown as { __injected?: number }).__injected)).toBeUndefined();
      expect(await bob.page.locator('.messages img, .messages b').count()).toBe(0);

      await bob.send('alice', 'hi alice');
      await bob.waitForRow('out', 'hi alice', 'delivered');
      await alice.waitForRow('in', 'hi alice');

      await alice.send('0', 'a note for the server');
      await alice.waitForRow('out', 'a note for the server', 'delivered');
      // The server is not a device: a C2S message stays at ✓.
      await alice.page.waitForTimeout(300);
      expect(await alice.rows('out', 'a note for the server').locator('.msg-status').innerText()).toBe('delivered ✓');
    },

    async surviveServerRestart(): Promise<void> {
      const onlineHeights = [await alice.barHeight(), await bob.barHeight()];
      await ctx.server().kill();
      for (const page of [alice, bob]) {
        await page.page.waitForFunction(() => /reconnecting (in \d+\.\d s|now) \(attempt \d+\)/.test(document.querySelector('.state')?.textContent ?? ''), null, { timeout: 10000 });
      }
      // The countdown and the Reconnect button stay on the header's one line, on a phone too.
      expect([await alice.barHeight(), await bob.barHeight()]).toEqual(onlineHeights);
      const during = 'written while the server was down';
      await alice.send('bob', during);
      await alice.waitForRow('out', during, 'sending');

      const restartedAt = Date.now();
      await ctx.server().start();
      await Promise.all([alice.waitForState('online', 40000), bob.waitForState('online', 40000)]);
      numbers.reconnectMs = Date.now() - restartedAt;
      await alice.waitForRow('out', during, 'delivered', 20000);
      numbers.outageDeliveredMs = Date.now() - restartedAt;
      await bob.waitForRow('in', during, undefined, 10000);
      // Give a duplicate (a retransmission, a replay from the offline store) time to show up.
      await bob.page.waitForTimeout(1500);
      expect(await bob.rows('in', during).count()).toBe(1);
      expect(await alice.rows('out', during).count()).toBe(1);
    },

    /** A user id of only spaces shows an error instead of failing silently; a blank message is not sent. */
    async blankInput(): Promise<void> {
      const page = await open('blank', false);
      await page.page.locator('input.f-user, .f-user input').first().fill('   ');
      await page.page.locator('.b-login').click();
      await page.page.locator('.login-error', { hasText: 'Enter a user id' }).waitFor({ timeout: 5000 });
      expect(await page.page.locator('.state').getAttribute('data-state')).toBe('idle');
      await page.login(ctx.server().wsUrl, 'blank-sender');
      await page.send('bob', '   \t ');
      await page.page.waitForTimeout(300);
      expect(await page.page.locator('.msg[data-dir="out"]').count()).toBe(0);
      await page.send('bob', '  not blank  ');
      await page.waitForRow('out', 'not blank', 'delivered');
    },

    async adminPush(): Promise<void> {
      const t0 = Date.now();
      const res = await ctx.server().admin('POST', '/api/send', { to: 'bob', content: 'maintenance at 22:00 (pushed by the admin API)' });
      expect(res.status).toBe(200);
      await bob.waitForRow('push', 'maintenance at 22:00');
      numbers.pushMs = Date.now() - t0;
      expect(await bob.rows('push', 'maintenance at 22:00').locator('.msg-meta').innerText()).toContain('server push');
    },

    async thirdTabKicksFirst(): Promise<ChatPage> {
      const second = await open('alice-again', false);
      await second.login(ctx.server().wsUrl, 'alice');
      await alice.waitForState('kicked');
      const notice = alice.page.locator('.notice');
      await notice.waitFor({ state: 'visible' });
      expect(await notice.innerText()).toMatch(/Kicked out: this user signed in somewhere else/);
      await alice.page.locator('.b-login').waitFor({ state: 'visible' });

      await second.send('bob', 'alice on her second device');
      await second.waitForRow('out', 'alice on her second device', 'delivered');
      await bob.waitForRow('in', 'alice on her second device');
      // The kicked page stays kicked: it does not log back in and steal the session.
      await alice.page.waitForTimeout(1500);
      expect(await alice.page.locator('.state').getAttribute('data-state')).toBe('kicked');
      await second.waitForState('online');
      return second;
    },
  };
}
