// An OpenID Connect provider on loopback for semdock's tests: the `oidc-provider` package
// (installed by scripts/test) with its development sign-in pages, users and groups the test
// sets, and one confidential client whose redirect URI the test names once semdock runs.
//
//   node provider.mjs NODE_MODULES_DIR
//
// Prints `ISSUER=http://127.0.0.1:PORT` once it listens. Test controls (loopback only):
//   POST /_test/client {"redirect_uri": "..."}         the client's redirect URI
//   POST /_test/users  {"name": "...", "groups": [...], "disabled": false}
//                      (and "username": the preferred_username claim, the name by default)
//   POST /_test/workload-token {"audience": "...", "claims": {...}, "expires_in": 300}
//                      a workload identity token, as a CI system hands one to a job (GitHub
//                      Actions' ID token request): a JWT from this issuer, signed with the
//                      key its jwks_uri publishes, with the claims given
//   POST /_test/rotate a new signing key replaces the old one in the published JWKS
import http from 'node:http';
import crypto from 'node:crypto';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const modules = process.argv[2];
const { default: Provider } = await import(
  pathToFileURL(path.join(modules, 'oidc-provider', 'lib', 'index.js')).href
);

const jose = await import(pathToFileURL(path.join(modules, 'jose', 'dist', 'webapi', 'index.js')).href);

let signing = null;
let jwks = null;
let redirect = 'http://127.0.0.1:1/unset';
function newKey() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  signing = { key: privateKey, kid: `key-${crypto.randomUUID()}` };
  jwks = { keys: [{ ...privateKey.export({ format: 'jwk' }), kid: signing.kid, alg: 'RS256', use: 'sig' }] };
}
newKey();
const users = new Map();
let provider = null;
let issuer = '';

function build(redirectUri) {
  const p = new Provider(issuer, {
    clients: [{
      client_id: 'semdock',
      client_secret: 'semdock-client-secret',
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    jwks,
    cookies: { keys: ['semdock-test-cookie-key'] },
    claims: { openid: ['sub'], profile: ['preferred_username', 'name'], groups: ['groups'] },
    scopes: ['openid', 'offline_access', 'profile', 'groups'],
    pkce: { required: () => true },
    features: { devInteractions: { enabled: true } },
    async findAccount(_ctx, id) {
      const u = users.get(id);
      if (!u || u.disabled) return undefined;
      return {
        accountId: id,
        async claims() {
          return { sub: id, preferred_username: u.username ?? id, name: id, groups: u.groups };
        },
      };
    },
  });
  p.on('server_error', (_ctx, err) => console.error('server_error', err));
  return p;
}

function body(req) {
  return new Promise((resolve, reject) => {
    let data = '';
    req.on('data', (c) => { data += c; });
    req.on('end', () => { try { resolve(JSON.parse(data || '{}')); } catch (e) { reject(e); } });
  });
}

const server = http.createServer(async (req, res) => {
  if (req.url.startsWith('/_test/')) {
    try {
      const b = await body(req);
      if (req.url === '/_test/client') {
        redirect = b.redirect_uri;
        provider = build(redirect);
      } else if (req.url === '/_test/rotate') {
        newKey();
        provider = build(redirect);
      } else if (req.url === '/_test/workload-token') {
        const now = Math.floor(Date.now() / 1000);
        const token = await new jose.SignJWT({ ...(b.claims || {}) })
          .setProtectedHeader({ alg: 'RS256', kid: signing.kid, typ: 'JWT' })
          .setIssuer(issuer)
          .setAudience(b.audience)
          .setIssuedAt(now)
          .setNotBefore(now - 5)
          .setExpirationTime(now + (b.expires_in ?? 300))
          .setJti(crypto.randomUUID())
          .sign(signing.key);
        res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ value: token }));
        return;
      } else if (req.url === '/_test/users') {
        users.set(b.name, { groups: b.groups || [], disabled: !!b.disabled, username: b.username });
      } else {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(204).end();
    } catch (e) {
      res.writeHead(400).end(String(e));
    }
    return;
  }
  if (!provider) {
    res.writeHead(503).end('no client yet: POST /_test/client first');
    return;
  }
  provider.callback()(req, res);
});

server.listen(0, '127.0.0.1', () => {
  issuer = `http://127.0.0.1:${server.address().port}`;
  provider = build(redirect);
  console.log(`ISSUER=${issuer}`);
});
