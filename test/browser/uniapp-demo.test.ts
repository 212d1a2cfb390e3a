import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStaticServer } from '../../demo-h5/static.mjs';
import { chatFlowSteps } from './chat-flow';
import { chromiumStatus, ensureRootBuilt, ensureUniAppBuilt, launchChromium, ServerProcess } from './harness';

const chromium = chromiumStatus();

describe.skipIf(!chromium.available)('demo-uniapp (H5 build) in headless Chromium against the reference server', () => {
  let browser: Browser;
  let server: ServerProcess;
  let web: { url: string; close(): Promise<void> };
  const flow = chatFlowSteps({ browser: () => browser, server: () => server, pageUrl: () => `${web.url}/`, label: 'uniapp' });

  beforeAll(async () => {
    ensureRootBuilt();
    const h5 = ensureUniAppBuilt();
    server = new ServerProcess();
    await server.start();
    web = await startStaticServer({ root: h5 });
    browser = await launchChromium();
  }, 300000);

  afterAll(async () => {
    const { alice, bob } = flow.pages();
    if (alice) await alice.screenshot('uniapp-alice-phone').catch(() => undefined);
    if (bob) await bob.screenshot('uniapp-bob-desktop').catch(() => undefined);
    await flow.close();
    await browser?.close();
    await web?.close();
    await server?.dispose();
    if (Object.keys(flow.numbers).length) console.log(`demo-uniapp flow (ms): ${JSON.stringify(flow.numbers)}`);
  }, 30000);

  it('two users in two browser contexts exchange messages and each sees "delivered"', () => flow.twoUsersChat(), 60000);

  it('both pages reconnect by themselves after a server SIGKILL and restart; a message written meanwhile arrives once', () => flow.surviveServerRestart(), 90000);

  it('an admin-API push appears in the page', () => flow.adminPush(), 30000);

  it('a user id of only spaces shows an error; a message of only spaces is not sent', () => flow.blankInput(), 30000);

  it('shows one title (the navigation bar), not two', async () => {
    const { alice } = flow.pages();
    expect(await alice.page.getByText(/MobileIMSDK-TS/).count()).toBe(1);
  });

  it('a third tab logging in as alice gets the first one kicked with a visible notice', async () => {
    const second = await flow.thirdTabKicksFirst();
    await second.screenshot('uniapp-alice-second-tab');
  }, 60000);

  it('no page threw an uncaught error during the flow', () => {
    const { alice, bob } = flow.pages();
    expect([...alice.pageErrors, ...bob.pageErrors]).toEqual([]);
  });
});

describe.runIf(chromium.mustFail)('browser tests on CI', () => {
  it('find Chromium', () => {
    throw new Error(chromium.message);
  });
});
