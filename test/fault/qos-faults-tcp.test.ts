import { describe, it } from 'vitest';
import { expectQosPromiseKept, runQosFaultScenario } from './qos-scenario';

describe('QoS through a faulty network and server restarts (TCP gateway, length-prefixed frames)', () => {
  it('settles every message as delivered once or reported lost: no silent loss, no duplicate', async () => {
    const report = await runQosFaultScenario('tcp', 1000, 100);
    console.log(report.text);
    expectQosPromiseKept(report, 1000, 100);
  }, 45000);
});
