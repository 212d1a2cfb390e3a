/** Type test: the TCP and UDP adapters accept Node's own `net` and `dgram` modules (@types/node). */
/// <reference types="node" />
import net from 'node:net';
import dgram from 'node:dgram';
import { createTcpAdapter } from '../../../adapters/tcp';
import { createUdpAdapter } from '../../../adapters/udp';

export const tcp = createTcpAdapter(net);
export const udp = createUdpAdapter(dgram);

// @ts-expect-error the dgram module is not a net module
createTcpAdapter(dgram);
