import { describe, it } from 'vitest';
import { expectQosPromiseKept, runQosFaultScenario } from './qos-scenario';

describe('QoS through a faulty network and server restarts (WebSocket gateway)', () => {
  it('settles every message as delivered once or reported lost: no silent loss, no duplicate', async () => {
    const report = await runQosFaultScenario('ws', 3000, 300);
    console.log(report.text);
    expectQosPromiseKept(report, 3000, 300);
  }, 45000);
});
