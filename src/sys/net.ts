/** Networking in C (native-bindings/src/net.c): the bridge, the veth pair into a container, link removal. */
import { SysError } from '../errors.js';
import { errnoName, errnoText } from './errno.js';
import { fastNet, library } from './native.js';

interface NetBindings {
  nb_net_bridge: (args: object) => number;
  nb_net_attach: (args: object, stage: Int32Array) => number;
  nb_net_link_del: (name: string) => number;
}

let netBound: NetBindings | undefined;

/** Declared on first use only: `run --network none` never pays for them. */
function bindNet(): NetBindings {
  if (netBound) return netBound;
  const { koffi, lib } = library();
  koffi.struct('nb_net_bridge_args', {
    name: 'const char *',
    addr: 'uint32_t',
    prefix_len: 'uint32_t',
    mtu: 'uint32_t',
    mac: koffi.array('uint8_t', 6),
    pad: koffi.array('uint8_t', 2),
  });
  koffi.struct('nb_net_args', {
    bridge: 'const char *',
    host_if: 'const char *',
    alias: 'const char *',
    pid: 'int32_t',
    addr: 'uint32_t',
    gateway: 'uint32_t',
    prefix_len: 'uint32_t',
    mtu: 'uint32_t',
    mac: koffi.array('uint8_t', 6),
    pad: koffi.array('uint8_t', 2),
  });
  netBound = {
    nb_net_bridge: lib.func('int nb_net_bridge(const nb_net_bridge_args *a)'),
    nb_net_attach: lib.func('int nb_net_attach(const nb_net_args *a, _Out_ int32_t *stage)'),
    nb_net_link_del: lib.func('int nb_net_link_del(const char *name)'),
  };
  return netBound;
}

/** An IPv4 address as the kernel wants it in a uint32 field: network byte order in memory. */
function beU32(addr: number): number {
  return (((addr & 0xff) << 24) | ((addr & 0xff00) << 8) | ((addr >>> 8) & 0xff00) | (addr >>> 24)) >>> 0;
}

function macBytes(mac: string): number[] {
  return mac.split(':').map((h) => parseInt(h, 16));
}

/** Create the bridge if missing (with its gateway address), bring it up. true: created now. */
export function netBridge(a: { name: string; gateway: number; prefixLen: number; mac: string; mtu?: number }): boolean {
  // through build/novabox.node where it is built: a start on the bridge never loads koffi
  const f = fastNet();
  const rc = f?.netBridge
    ? f.netBridge(a.name, beU32(a.gateway) | 0, a.prefixLen, a.mtu ?? 0, Uint8Array.from(macBytes(a.mac)))
    : bindNet().nb_net_bridge({
        name: a.name,
        addr: beU32(a.gateway),
        prefix_len: a.prefixLen,
        mtu: a.mtu ?? 0,
        mac: macBytes(a.mac),
        pad: [0, 0],
      });
  if (rc < 0) throw new SysError('rtnetlink (bridge)', errnoName(rc), a.name, `cannot set up bridge ${a.name}: ${errnoText(rc)}`);
  return rc === 1;
}

const NET_STAGES: Record<number, string> = {
  1: 'check the network request',
  2: 'find the bridge',
  3: "open the container's network namespace",
  4: 'create the veth pair',
  5: "enter the container's network namespace",
  6: 'configure eth0 inside the container',
};

export interface NetAttach {
  bridge: string;
  hostIf: string;
  alias?: string;
  pid: number;
  /** host-order IPv4 numbers */
  address: number;
  gateway: number;
  prefixLen: number;
  mac: string;
  /** both ends; undefined: the kernel's default (1500) */
  mtu?: number;
}

/** The veth pair into the init's namespace, configured (see net.c). Leaves nothing on failure. */
export function netAttach(a: NetAttach): void {
  const addr = beU32(a.address);
  const gateway = beU32(a.gateway);
  const mac = macBytes(a.mac);
  const mtu = a.mtu ?? 0;
  // through build/novabox.node where it is built (as netBridge), else koffi
  const f = fastNet();
  const stage = new Int32Array(1);
  const rc = f?.netAttach
    ? f.netAttach(a.bridge, a.hostIf, a.alias ?? '', a.pid, addr | 0, gateway | 0, a.prefixLen, mtu, Uint8Array.from(mac), stage)
    : bindNet().nb_net_attach(
        {
          bridge: a.bridge,
          host_if: a.hostIf,
          alias: a.alias ?? null,
          pid: a.pid,
          addr,
          gateway,
          prefix_len: a.prefixLen,
          mtu,
          mac,
          pad: [0, 0],
        },
        stage,
      );
  if (rc < 0) {
    const what = NET_STAGES[stage[0]] ?? 'set up the network';
    throw new SysError('rtnetlink', errnoName(rc), a.hostIf, `cannot ${what} (${a.hostIf} on ${a.bridge}): ${errnoText(rc)}`);
  }
}

/** Remove a network link by name. false: there was none. */
export function linkDel(name: string): boolean {
  const f = fastNet();
  const rc = f?.netLinkDel ? f.netLinkDel(name) : bindNet().nb_net_link_del(name);
  if (rc === 0) return true;
  if (errnoName(rc) === 'ENODEV') return false;
  throw new SysError('rtnetlink (delete link)', errnoName(rc), name, `cannot remove ${name}: ${errnoText(rc)}`);
}
