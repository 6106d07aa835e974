import {
  DialPolicy,
  effectiveAddress,
  parseAllowedNetworks,
  refusedAddressKind,
} from './dial-policy';

describe('refusedAddressKind', () => {
  it.each([
    ['169.254.169.254', 'link-local'],
    ['169.254.0.1', 'link-local'],
    ['fe80::1', 'link-local'],
    ['FE80::abcd:1', 'link-local'],
    ['febf::1', 'link-local'],
    ['fd00:ec2::254', 'cloud metadata'],
    ['100.100.100.200', 'cloud metadata'],
    ['192.0.0.192', 'cloud metadata'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['::', 'unspecified'],
    ['::ffff:169.254.169.254', 'link-local'],
    ['::ffff:a9fe:a9fe', 'link-local'],
    ['0:0:0:0:0:ffff:a9fe:a9fe', 'link-local'],
    ['::ffff:0.0.0.0', 'unspecified'],
    ['::ffff:100.100.100.200', 'cloud metadata'],
    ['64:ff9b::a9fe:a9fe', 'link-local'],
    ['64:ff9b::169.254.169.254', 'link-local'],
  ])('%s is always refused (%s)', (address, kind) => {
    expect(refusedAddressKind(address)).toBe(kind);
  });

  it.each([
    '127.0.0.1',
    '127.0.0.2',
    '::1',
    '10.1.2.3',
    '172.17.0.2',
    '192.168.1.10',
    '100.64.0.7', // tailnet (CGNAT range)
    '100.100.100.100', // next to Alibaba's metadata, but not it
    'fd7a:115c:a1e0::1', // tailnet IPv6
    'fd00:ec2::253',
    'fec0::1',
    '::ffff:127.0.0.1',
    '8.8.8.8',
    '169.253.255.255',
    '169.255.0.1',
  ])('%s is allowed by default', (address) => {
    expect(refusedAddressKind(address)).toBeNull();
    expect(new DialPolicy().judge('gateway.example', [address]).allowed).toBe(true);
  });

  it('reads IPv4-mapped and NAT64 addresses as their IPv4 address', () => {
    expect(effectiveAddress('::ffff:10.0.0.1')).toEqual({ address: '10.0.0.1', family: 4 });
    expect(effectiveAddress('64:ff9b::0a00:0001')).toEqual({ address: '10.0.0.1', family: 4 });
    expect(effectiveAddress('2001:db8::1')).toEqual({ address: '2001:db8::1', family: 6 });
  });
});

describe('DialPolicy', () => {
  it('refuses a name when any of its addresses is refused, naming the address and why', () => {
    const verdict = new DialPolicy().judge('rebind.example', ['10.0.0.5', '169.254.169.254']);
    expect(verdict).toEqual({ allowed: false, reason: '169.254.169.254 is a link-local address' });
  });

  it('with GATEWAY_ALLOWED_NETWORKS allows only listed networks and host names', () => {
    const policy = new DialPolicy([
      '10.0.0.0/8',
      'fd7a:115c:a1e0::/48',
      'gw.example.com',
      '*.tail.net',
    ]);
    expect(policy.restricted).toBe(true);
    expect(policy.judge('x', ['10.9.8.7']).allowed).toBe(true);
    expect(policy.judge('x', ['::ffff:10.9.8.7']).allowed).toBe(true);
    expect(policy.judge('x', ['fd7a:115c:a1e0::5']).allowed).toBe(true);
    expect(policy.judge('x', ['127.0.0.1'])).toEqual({
      allowed: false,
      reason: '127.0.0.1 is outside GATEWAY_ALLOWED_NETWORKS',
    });
    expect(policy.judge('GW.example.com.', ['192.168.1.1']).allowed).toBe(true);
    expect(policy.judge('a.tail.net', ['100.64.1.1']).allowed).toBe(true);
    expect(policy.judge('tail.net.evil', ['100.64.1.1']).allowed).toBe(false);
    // A listed name never makes a metadata address dialable.
    expect(policy.judge('gw.example.com', ['169.254.169.254']).allowed).toBe(false);
  });

  it('rejects malformed GATEWAY_ALLOWED_NETWORKS entries', () => {
    expect(parseAllowedNetworks(['10.0.0.0/33', 'a b', '::1/129', '10.0.0.0/8']).problems).toEqual([
      '"10.0.0.0/33" is not a valid CIDR',
      '"a b" is neither a CIDR, an IP address nor a host name',
      '"::1/129" is not a valid CIDR',
    ]);
    expect(() => new DialPolicy(['nope/3'])).toThrow('neither a CIDR');
  });

  it('resolves names (all addresses) and judges IP literals, bracketed or not', async () => {
    const policy = new DialPolicy();
    await expect(policy.resolve('[::ffff:169.254.169.254]')).resolves.toMatchObject({
      allowed: false,
    });
    await expect(policy.resolve('localhost')).resolves.toMatchObject({ allowed: true });
    await expect(new DialPolicy(['10.0.0.0/8']).resolve('localhost')).resolves.toMatchObject({
      allowed: false,
    });
  });
});

describe('always-refused additions (review)', () => {
  it.each([
    ['168.63.129.16', 'cloud metadata'], // Azure WireServer
    ['::ffff:168.63.129.16', 'cloud metadata'],
    ['fd20:ce::254', 'cloud metadata'], // GCP metadata over IPv6
    ['64:ff9b:1::a9fe:a9fe', 'link-local'], // local-use NAT64, /96 embedding
    ['64:ff9b:1:a9fe:a9:fe00::', 'link-local'], // /48 embedding (RFC 6052 §2.2)
    ['64:ff9b:1:a9:fe:a9fe::', 'link-local'], // /56 embedding
    ['64:ff9b:1:0:a9:fea9:fe00:0', 'link-local'], // /64 embedding
    ['64:ff9b:1::a9fe:fea9', 'link-local'], // /96 embedding
  ])('%s is always refused (%s)', (address, kind) => {
    expect(refusedAddressKind(address)).toBe(kind);
  });

  it.each(['64:ff9b:1::a00:1', '168.63.129.17', 'fd20:ce::253'])(
    '%s stays allowed by default',
    (address) => {
      expect(refusedAddressKind(address)).toBeNull();
    },
  );
});
