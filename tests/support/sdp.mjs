// SDP offers as a browser would write them, for signalling tests.

// A well-formed offer like a browser's (the fingerprint is made up: no DTLS will ever complete with it). `mid`: its
// audio section's a=mid (null: none).
export function offer({ media = 'audio', codecs = [[111, 'opus/48000/2']], direction = 'sendonly', ice = true, fingerprint = true, candidates = [], mid = '0' } = {}) {
  const fp = Array.from({ length: 32 }, (_, i) => ((i * 37 + 11) % 256).toString(16).padStart(2, '0').toUpperCase()).join(':');
  return [
    'v=0', 'o=- 4611731400430051336 2 IN IP4 127.0.0.1', 's=-', 't=0 0', ...(mid === null ? [] : [`a=group:BUNDLE ${mid}`]), 'a=msid-semantic: WMS',
    `m=${media} 9 UDP/TLS/RTP/SAVPF ${codecs.map((c) => c[0]).join(' ')}`, 'c=IN IP4 0.0.0.0', 'a=rtcp:9 IN IP4 0.0.0.0',
    ...(ice ? ['a=ice-ufrag:Wq3x', 'a=ice-pwd:abcdefghijklmnopqrstuvwx', 'a=ice-options:trickle'] : []),
    ...(fingerprint ? [`a=fingerprint:sha-256 ${fp}`] : []),
    'a=setup:actpass', ...(mid === null ? [] : [`a=mid:${mid}`]), `a=${direction}`, 'a=rtcp-mux', ...candidates.map((c) => `a=${c}`),
    ...codecs.map(([pt, name]) => `a=rtpmap:${pt} ${name}`), 'a=ssrc:1001 cname:test', '',
  ].join('\r\n');
}
