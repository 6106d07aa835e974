/**
 * Which addresses the gateway client may dial (SSRF). Users administer their own gateways, so
 * a gateway URL is user input: checked on the RESOLVED addresses, and the socket then connects
 * to the address that was checked (the name is kept for Host and TLS SNI), so a DNS answer
 * that changes between check and connect (rebinding) cannot redirect it.
 *
 * - Always refused: link-local and cloud metadata endpoints (169.254.0.0/16, fe80::/10,
 *   fd00:ec2::254, fd20:ce::254, 100.100.100.200, 192.0.0.192, 168.63.129.16) and unspecified
 *   addresses (0.0.0.0/8, ::), also when written IPv4-mapped (::ffff:169.254.169.254) or
 *   NAT64 (64:ff9b::a9fe:a9fe; in the local-use 64:ff9b:1::/48 at every RFC 6052 position).
 * - `GATEWAY_ALLOWED_NETWORKS` (CIDRs, addresses and host names), when set, is the only thing
 *   allowed; otherwise everything else (loopback, private ranges, tailnets, public) is.
 */
import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';

export type RefusedAddressKind = 'link-local' | 'cloud metadata' | 'unspecified';

const ALWAYS_REFUSED: { kind: RefusedAddressKind; cidr: string }[] = [
  { kind: 'cloud metadata', cidr: '100.100.100.200/32' }, // Alibaba Cloud
  { kind: 'cloud metadata', cidr: '192.0.0.192/32' }, // Oracle Cloud
  { kind: 'cloud metadata', cidr: '168.63.129.16/32' }, // Azure WireServer
  { kind: 'cloud metadata', cidr: 'fd00:ec2::254/128' }, // AWS over IPv6
  { kind: 'cloud metadata', cidr: 'fd20:ce::254/128' }, // GCP over IPv6
  { kind: 'link-local', cidr: '169.254.0.0/16' }, // AWS, GCP, Azure metadata live here
  { kind: 'link-local', cidr: 'fe80::/10' },
  { kind: 'unspecified', cidr: '0.0.0.0/8' },
  { kind: 'unspecified', cidr: '::/128' },
];

const refusedLists = ALWAYS_REFUSED.map(({ kind, cidr }) => ({ kind, list: blockListOf([cidr]) }));

/**
 * An address as the kernel would route it: IPv4-mapped (`::ffff:a.b.c.d`) and NAT64
 * (`64:ff9b::a.b.c.d`) IPv6 addresses reach the embedded IPv4 address.
 */
export function effectiveAddress(address: string): { address: string; family: 4 | 6 } {
  const family = isIP(address);
  if (family === 4) return { address, family: 4 };
  if (family !== 6) throw new Error(`not an IP address: ${address}`);
  const groups = expandIpv6(address);
  const embedded = `${groups[6] >> 8}.${groups[6] & 0xff}.${groups[7] >> 8}.${groups[7] & 0xff}`;
  const mapped = groups.slice(0, 5).every((group) => group === 0) && groups[5] === 0xffff;
  const nat64 =
    groups[0] === 0x64 && groups[1] === 0xff9b && groups.slice(2, 6).every((group) => group === 0);
  // The local-use prefix at /96 (the other positions are checked by refusedAddressKind).
  const localNat64 =
    groups[0] === 0x64 &&
    groups[1] === 0xff9b &&
    groups[2] === 0x0001 &&
    groups.slice(3, 6).every((group) => group === 0);
  if (mapped || nat64 || localNat64) return { address: embedded, family: 4 };
  return { address: address.toLowerCase(), family: 6 };
}

function refusedKindOf(address: string, type: 'ipv4' | 'ipv6'): RefusedAddressKind | null {
  return refusedLists.find(({ list }) => list.check(address, type))?.kind ?? null;
}

/**
 * The IPv4 addresses a local-use NAT64 address (64:ff9b:1::/48, RFC 8215) may embed: the
 * operator picks the prefix length (/48, /56, /64 or /96), which moves the IPv4 bytes (RFC 6052
 * §2.2, skipping byte 8), and we cannot know which one the translator uses. Empty otherwise.
 */
export function localUseNat64Candidates(address: string): string[] {
  if (isIP(address) !== 6) return [];
  const groups = expandIpv6(address);
  if (groups[0] !== 0x64 || groups[1] !== 0xff9b || groups[2] !== 0x0001) return [];
  const bytes = groups.flatMap((group) => [group >> 8, group & 0xff]);
  const positions = [
    [6, 7, 9, 10], // /48
    [7, 9, 10, 11], // /56
    [9, 10, 11, 12], // /64
    [12, 13, 14, 15], // /96
  ];
  return positions.map((at) => at.map((index) => bytes[index]).join('.'));
}

/** Why an address may never be dialled, or null. Pure. */
export function refusedAddressKind(address: string): RefusedAddressKind | null {
  const effective = effectiveAddress(address);
  const kind = refusedKindOf(effective.address, effective.family === 4 ? 'ipv4' : 'ipv6');
  if (kind) return kind;
  // Zero bytes are the common filler of the other positions: only a link-local or metadata
  // address found at one of them counts (an unspecified one is judged at /96 only).
  for (const candidate of localUseNat64Candidates(address)) {
    const embedded = refusedKindOf(candidate, 'ipv4');
    if (embedded && embedded !== 'unspecified') return embedded;
  }
  return null;
}

export interface DialTarget {
  /** The address to connect to (checked). */
  address: string;
  family: 4 | 6;
}

/** Allowed: every address the name resolved to, all checked, to connect to (in order). */
export type DialVerdict =
  { allowed: true; targets: DialTarget[] } | { allowed: false; reason: string };

/** Every address a host name resolves to (A and AAAA, in resolver order). */
export type HostLookup = (hostName: string) => Promise<string[]>;

const systemLookup: HostLookup = async (hostName) =>
  (await lookup(hostName, { all: true, verbatim: true })).map((answer) => answer.address);

export interface DialPolicyOptions {
  /** Name resolution (default: the system resolver); tests inject one that never leaves. */
  lookup?: HostLookup;
}

export class DialPolicy {
  private readonly networks: BlockList | null;
  private readonly hostNames: readonly string[];
  private readonly lookup: HostLookup;

  /** `allowed`: GATEWAY_ALLOWED_NETWORKS entries; empty means "anything not always refused". */
  constructor(allowed: readonly string[] = [], options: DialPolicyOptions = {}) {
    this.lookup = options.lookup ?? systemLookup;
    const { cidrs, hostNames, problems } = parseAllowedNetworks(allowed);
    if (problems.length > 0) throw new Error(problems.join('; '));
    this.networks = cidrs.length > 0 || hostNames.length > 0 ? blockListOf(cidrs) : null;
    this.hostNames = hostNames;
  }

  get restricted(): boolean {
    return this.networks !== null;
  }

  /**
   * Judges a host name (as written in the URL) and every address it resolved to: all must
   * pass (a name that also resolves to a metadata address is refused); those are dialled.
   * Pure.
   */
  judge(hostName: string, addresses: readonly string[]): DialVerdict {
    if (addresses.length === 0) return { allowed: false, reason: 'the host name has no address' };
    const name = hostName.toLowerCase().replace(/\.$/, '');
    const nameAllowed = this.hostNames.some(
      (allowed) => name === allowed || (allowed.startsWith('.') && name.endsWith(allowed)),
    );
    for (const address of addresses) {
      const kind = refusedAddressKind(address);
      if (kind) {
        const article = /^[aeiou]/.test(kind) ? 'an' : 'a';
        return { allowed: false, reason: `${address} is ${article} ${kind} address` };
      }
      if (this.networks && !nameAllowed) {
        const effective = effectiveAddress(address);
        const type = effective.family === 4 ? 'ipv4' : 'ipv6';
        if (!this.networks.check(effective.address, type)) {
          return { allowed: false, reason: `${address} is outside GATEWAY_ALLOWED_NETWORKS` };
        }
      }
    }
    return {
      allowed: true,
      targets: addresses.map((address) => ({ address, family: isIP(address) === 6 ? 6 : 4 })),
    };
  }

  /** Resolves `hostName` (all addresses) and judges it. */
  async resolve(hostName: string): Promise<DialVerdict> {
    const bare = hostName.replace(/^\[(.*)\]$/, '$1');
    if (isIP(bare)) return this.judge(bare, [bare]);
    return this.judge(bare, await this.lookup(bare));
  }
}

/** Splits GATEWAY_ALLOWED_NETWORKS entries into CIDRs/addresses and host names. */
export function parseAllowedNetworks(entries: readonly string[]): {
  cidrs: string[];
  hostNames: string[];
  problems: string[];
} {
  const cidrs: string[] = [];
  const hostNames: string[] = [];
  const problems: string[] = [];
  for (const raw of entries) {
    const entry = raw.trim().toLowerCase();
    if (!entry) continue;
    const [base, prefix, extra] = entry.split('/');
    const family = isIP(base);
    if (family !== 0) {
      const bits = prefix === undefined ? (family === 4 ? 32 : 128) : Number(prefix);
      if (
        extra !== undefined ||
        !Number.isInteger(bits) ||
        bits < 0 ||
        bits > (family === 4 ? 32 : 128)
      ) {
        problems.push(`"${raw}" is not a valid CIDR`);
      } else {
        cidrs.push(`${base}/${bits}`);
      }
      continue;
    }
    const name = entry.replace(/^\*\./, '.').replace(/\.$/, '');
    if (
      prefix !== undefined ||
      !/^\.?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/.test(name)
    ) {
      problems.push(`"${raw}" is neither a CIDR, an IP address nor a host name`);
      continue;
    }
    hostNames.push(name);
  }
  return { cidrs, hostNames, problems };
}

function blockListOf(cidrs: readonly string[]): BlockList {
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [base, bits] = cidr.split('/');
    const family = isIP(base) === 4 ? 'ipv4' : 'ipv6';
    list.addSubnet(base, Number(bits), family);
  }
  return list;
}

/** Eight 16-bit groups of an IPv6 address (with `::` and a dotted IPv4 tail expanded). */
function expandIpv6(address: string): number[] {
  let text = address.toLowerCase().split('%')[0];
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted[1].split('.').map(Number);
    text =
      text.slice(0, -dotted[1].length) +
      `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, null];
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail ? tail.split(':') : [];
  const missing = 8 - headGroups.length - tailGroups.length;
  const groups = [
    ...headGroups,
    ...Array<string>(tail === null ? 0 : missing).fill('0'),
    ...tailGroups,
  ];
  return groups.map((group) => parseInt(group, 16) || 0);
}
