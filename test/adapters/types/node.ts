/** Type test: the TCP and UDP adapters accept Node's own `net`, `tls` and `dgram` modules (@types/node). */
/// <reference types="node" />
import net from 'node:net';
import dgram from 'node:dgram';
import tls from 'node:tls';
import { createTcpAdapter } from '../../../adapters/tcp';
import { createUdpAdapter } from '../../../adapters/udp';

export const tcp = createTcpAdapter(net);
export const udp = createUdpAdapter(dgram);
export const secure = createTcpAdapter(tls, { ca: ['-----BEGIN CERTIFICATE-----'], servername: 'localhost' });
export const insecure = createTcpAdapter(tls, { rejectUnauthorized: false });

// @ts-expect-error the dgram module is not a net module
createTcpAdapter(dgram);
