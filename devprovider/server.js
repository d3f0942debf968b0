#!/usr/bin/env node
// Local OpenID Connect provider for BookLore development and tests.
//
// Built on oidc-provider v8 (Node >= 18). NOT for production use: users,
// passwords and clients come from a JSON config, all state is in memory.
//
//   node devprovider/server.js --config path/to/config.json
//   DEVPROVIDER_CONFIG='{"port":9000,...}' node devprovider/server.js
//
// See README.md for the config shape and the dev-only endpoints.

import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import process from 'node:process';

import Provider from 'oidc-provider';

const DEFAULT_CONFIG = {
  port: 9000,
  host: '127.0.0.1',
  issuer: null, // defaults to http://<host>:<port>
  clients: [
    {
      client_id: 'booklore',
      client_secret: null,
      redirect_uris: ['http://localhost:5000/oauth2-callback'],
      post_logout_redirect_uris: ['http://localhost:5000/login?logged_out=1'],
      token_endpoint_auth_method: 'none',
      backchannel_logout_uri: null,
    },
  ],
  users: [
    {
      sub: 'u-reader',
      username: 'reader',
      password: 'reader',
      email: 'reader@example.com',
      email_verified: true,
      name: 'Rita Reader',
      groups: ['readers'],
    },
  ],
  groups_in_id_token: true,
  rotate_keys_file: null,
};

const ERROR_EVENTS = [
  'authorization.error',
  'backchannel.error',
  'check_session_origin.error',
  'check_session.error',
  'discovery.error',
  'end_session.error',
  'grant.error',
  'interaction.error',
  'jwks.error',
  'pushed_authorization_request.error',
  'registration_create.error',
  'registration_delete.error',
  'registration_read.error',
  'registration_update.error',
  'revocation.error',
  'userinfo.error',
];

// ---------------------------------------------------------------------------
// small helpers

function logErr(msg) {
  process.stderr.write(`devprovider: ${msg}\n`);
}

function fail(msg) {
  logErr(msg);
  process.exit(2);
}

function esc(value) {
  return String(value ?? '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

function readBody(req, limit = 64 * 1024) {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks = [];
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > limit) {
        reject(new Error('request body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function send(res, status, body, type = 'text/html; charset=utf-8', headers = {}) {
  const buf = Buffer.from(body, 'utf8');
  res.writeHead(status, {
    'Content-Type': type,
    'Content-Length': buf.length,
    'Cache-Control': 'no-store',
    ...headers,
  });
  res.end(buf);
}

function sendJson(res, status, obj) {
  send(res, status, `${JSON.stringify(obj, null, 2)}\n`, 'application/json; charset=utf-8');
}

function safeEqual(a, b) {
  const ha = crypto.createHash('sha256').update(String(a)).digest();
  const hb = crypto.createHash('sha256').update(String(b)).digest();
  return crypto.timingSafeEqual(ha, hb);
}

// ---------------------------------------------------------------------------
// configuration

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    if (arg === '--config' || arg === '-c') {
      out.config = argv[i + 1];
      i += 1;
    } else if (arg.startsWith('--config=')) {
      out.config = arg.slice('--config='.length);
    } else if (arg === '--help' || arg === '-h') {
      out.help = true;
    } else {
      fail(`unknown argument: ${arg} (usage: node server.js [--config FILE])`);
    }
  }
  return out;
}

function loadConfig() {
  const args = parseArgs(process.argv.slice(2));
  if (args.help) {
    process.stdout.write('usage: node server.js [--config FILE]\n'
      + '  or set DEVPROVIDER_CONFIG to the config JSON (or to a file path).\n'
      + '  Without either, a built-in demo config is used (see README.md).\n');
    process.exit(0);
  }

  let raw;
  let source;
  if (args.config) {
    source = args.config;
    try {
      raw = fs.readFileSync(args.config, 'utf8');
    } catch (err) {
      fail(`cannot read config file ${args.config}: ${err.message}`);
    }
  } else if (process.env.DEVPROVIDER_CONFIG && process.env.DEVPROVIDER_CONFIG.trim()) {
    const env = process.env.DEVPROVIDER_CONFIG.trim();
    if (env.startsWith('{')) {
      source = 'DEVPROVIDER_CONFIG';
      raw = env;
    } else {
      source = env;
      try {
        raw = fs.readFileSync(env, 'utf8');
      } catch (err) {
        fail(`cannot read config file ${env} (from DEVPROVIDER_CONFIG): ${err.message}`);
      }
    }
  }

  let cfg = {};
  if (raw !== undefined) {
    try {
      cfg = JSON.parse(raw);
    } catch (err) {
      fail(`invalid JSON in config ${source}: ${err.message}`);
    }
    if (!cfg || typeof cfg !== 'object' || Array.isArray(cfg)) {
      fail(`config ${source} must be a JSON object`);
    }
  }

  const config = { ...DEFAULT_CONFIG, ...cfg };
  config.port = Number(config.port);
  if (!Number.isInteger(config.port) || config.port < 1 || config.port > 65535) {
    fail('config "port" must be an integer between 1 and 65535');
  }
  config.host = config.host || '127.0.0.1';
  config.issuer = (config.issuer || `http://${config.host}:${config.port}`).replace(/\/+$/, '');
  try {
    const u = new URL(config.issuer);
    if (u.search || u.hash) throw new Error('no query/fragment allowed');
  } catch (err) {
    fail(`config "issuer" is not a valid URL: ${err.message}`);
  }
  config.groups_in_id_token = config.groups_in_id_token !== false;

  if (!Array.isArray(config.users) || config.users.length === 0) {
    fail('config "users" must be a non-empty array');
  }
  const seen = new Set();
  config.users.forEach((u, i) => {
    for (const key of ['sub', 'username', 'password']) {
      if (typeof u[key] !== 'string' || !u[key]) fail(`config users[${i}].${key} must be a non-empty string`);
    }
    if (seen.has(u.sub)) fail(`duplicate user sub ${u.sub}`);
    seen.add(u.sub);
  });

  if (!Array.isArray(config.clients) || config.clients.length === 0) {
    fail('config "clients" must be a non-empty array');
  }
  config.clients.forEach((c, i) => {
    if (typeof c.client_id !== 'string' || !c.client_id) fail(`config clients[${i}].client_id must be a non-empty string`);
    if (!Array.isArray(c.redirect_uris) || c.redirect_uris.length === 0) fail(`config clients[${i}].redirect_uris must be a non-empty array`);
  });

  return config;
}

// Turn the config's client entries into oidc-provider client metadata.
function clientMetadata(c) {
  const meta = {};
  for (const [key, value] of Object.entries(c)) {
    if (value !== null && value !== undefined) meta[key] = value;
  }
  if (!meta.token_endpoint_auth_method) {
    meta.token_endpoint_auth_method = meta.client_secret ? 'client_secret_basic' : 'none';
  }
  if (meta.token_endpoint_auth_method === 'none') {
    delete meta.client_secret;
  } else if (!meta.client_secret) {
    fail(`client ${c.client_id}: token_endpoint_auth_method ${meta.token_endpoint_auth_method} needs a client_secret`);
  }
  if (meta.backchannel_logout_uri) {
    // put `sid` into ID tokens and logout tokens so the RP can end the right session
    meta.backchannel_logout_session_required ??= true;
  }
  if (meta.frontchannel_logout_uri) {
    // our own front-channel logout (see frontChannelUris): `sid` in ID tokens and the iframes
    meta.frontchannel_logout_session_required ??= true;
  }
  meta.grant_types ??= ['authorization_code'];
  meta.response_types ??= ['code'];
  return meta;
}

// ---------------------------------------------------------------------------
// storage: a plain in-memory adapter shared by every Provider instance of this
// process (so sessions, grants and tokens survive a key rotation). Nothing is
// persisted: restarting the process logs everybody out.

const STORE = new Map(); // key -> { value, expiresAt (ms epoch or Infinity) }
let upserts = 0;

function storeGet(key) {
  const entry = STORE.get(key);
  if (!entry) return undefined;
  if (entry.expiresAt <= Date.now()) {
    STORE.delete(key);
    return undefined;
  }
  return entry.value;
}

function storeSet(key, value, expiresIn) {
  const expiresAt = expiresIn ? Date.now() + expiresIn * 1000 : Infinity;
  STORE.set(key, { value, expiresAt });
  upserts += 1;
  if (upserts % 500 === 0) {
    const now = Date.now();
    for (const [k, entry] of STORE) if (entry.expiresAt <= now) STORE.delete(k);
  }
}

const GRANTABLE = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode',
  'BackchannelAuthenticationRequest']);

class DevMemoryAdapter {
  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    if (this.model === 'Session') storeSet(`sessionUid:${payload.uid}`, id, expiresIn);
    if (GRANTABLE.has(this.model) && payload.grantId) {
      // grant -> keys of everything issued under it (for revokeByGrantId);
      // lives as long as the longest-lived of those
      const grantKey = `grant:${payload.grantId}`;
      const list = storeGet(grantKey) || [];
      const prev = STORE.get(grantKey)?.expiresAt ?? 0;
      list.push(key);
      storeSet(grantKey, list, expiresIn);
      const entry = STORE.get(grantKey);
      entry.expiresAt = Math.max(entry.expiresAt, prev);
    }
    if (payload.userCode) storeSet(`userCode:${payload.userCode}`, id, expiresIn);
    storeSet(key, payload, expiresIn);
  }

  async find(id) {
    return storeGet(this.key(id));
  }

  async findByUid(uid) {
    const id = storeGet(`sessionUid:${uid}`);
    return id ? this.find(id) : undefined;
  }

  async findByUserCode(userCode) {
    const id = storeGet(`userCode:${userCode}`);
    return id ? this.find(id) : undefined;
  }

  async consume(id) {
    const payload = storeGet(this.key(id));
    if (payload) payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    STORE.delete(this.key(id));
  }

  async revokeByGrantId(grantId) { // eslint-disable-line class-methods-use-this
    const grantKey = `grant:${grantId}`;
    for (const key of storeGet(grantKey) || []) STORE.delete(key);
    STORE.delete(grantKey);
  }
}

// ---------------------------------------------------------------------------
// signing keys

function newSigningKey() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '');
  return {
    ...jwk,
    kid: `dev-${stamp}-${crypto.randomBytes(4).toString('hex')}`,
    alg: 'RS256',
    use: 'sig',
  };
}

function publicJwk({ kty, kid, alg, use, n, e }) {
  return { kty, kid, alg, use, n, e };
}

function loadOrCreateKeys(file) {
  if (file && fs.existsSync(file)) {
    try {
      const data = JSON.parse(fs.readFileSync(file, 'utf8'));
      if (Array.isArray(data.keys) && data.keys.length && data.keys.every((k) => k.kty === 'RSA' && k.d && k.kid)) {
        return data.keys;
      }
      logErr(`rotate_keys_file ${file} has no usable private RSA keys, generating a new one`);
    } catch (err) {
      logErr(`cannot read rotate_keys_file ${file} (${err.message}), generating a new key`);
    }
  }
  const keys = [newSigningKey()];
  saveKeys(file, keys);
  return keys;
}

function saveKeys(file, keys) {
  if (!file) return;
  try {
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    fs.writeFileSync(file, `${JSON.stringify({ keys }, null, 2)}\n`, { mode: 0o600 });
  } catch (err) {
    logErr(`cannot write rotate_keys_file ${file}: ${err.message}`);
  }
}

// ---------------------------------------------------------------------------
// HTML

const CSS = `
*{box-sizing:border-box}
body{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;
  font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
  background:#f1f3f7;color:#1f2430}
.card{width:100%;max-width:360px;background:#fff;border-radius:12px;padding:28px 28px 22px;
  box-shadow:0 6px 24px rgba(20,30,60,.12)}
h1{font-size:1.35rem;margin:0 0 4px;text-align:center}
.sub{margin:0 0 20px;text-align:center;color:#5b6275;font-size:.92rem}
label{display:block;font-size:.85rem;font-weight:600;margin:14px 0 6px}
input[type=text],input[type=password]{width:100%;padding:10px 12px;font-size:1rem;border:1px solid #c9cfdb;
  border-radius:8px;background:#fbfcfe}
input:focus{outline:2px solid #4b6bfb;outline-offset:0;border-color:#4b6bfb}
button{width:100%;margin-top:20px;padding:11px;font-size:1rem;font-weight:600;border:0;border-radius:8px;
  background:#4b6bfb;color:#fff;cursor:pointer}
button:hover{background:#3a57e0}
button.secondary{background:#e7eaf1;color:#1f2430;margin-top:10px}
button.secondary:hover{background:#d9deea}
.error{background:#fdecec;color:#a4161a;border:1px solid #f5c2c2;border-radius:8px;padding:9px 12px;
  font-size:.9rem;margin-bottom:6px}
.hint{margin-top:18px;font-size:.8rem;color:#6b7285;text-align:center}
.hint code{background:#eef1f6;padding:1px 5px;border-radius:4px}
.cancel{display:block;margin-top:12px;text-align:center;font-size:.85rem;color:#5b6275}
`;

function page(bodyHtml, { head = '' } = {}) {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Pocket ID (demo)</title>
<style>${CSS}</style>
${head}
</head>
<body>
<main class="card">
${bodyHtml}
</main>
</body>
</html>
`;
}

function loginPage({ uid, clientName, usernames, error, username }) {
  return page(`
<h1>Pocket ID (demo)</h1>
<p class="sub">Sign in to continue to <strong>${esc(clientName)}</strong></p>
${error ? `<div class="error" role="alert">${esc(error)}</div>` : ''}
<form method="post" action="/interaction/${esc(uid)}/login" autocomplete="off">
  <label for="username">Username</label>
  <input type="text" id="username" name="username" value="${esc(username)}" autocomplete="username"
    autocapitalize="none" spellcheck="false" required ${username ? '' : 'autofocus'}>
  <label for="password">Password</label>
  <input type="password" id="password" name="password" autocomplete="current-password" required
    ${username ? 'autofocus' : ''}>
  <button type="submit">Sign in</button>
</form>
<a class="cancel" href="/interaction/${esc(uid)}/abort">Cancel</a>
<p class="hint">Demo users: ${usernames.map((u) => `<code>${esc(u)}</code>`).join(', ')}</p>
`);
}

function messagePage(title, message) {
  return page(`
<h1>Pocket ID (demo)</h1>
<p class="sub"><strong>${esc(title)}</strong></p>
<p class="sub">${esc(message)}</p>
`);
}

// ---------------------------------------------------------------------------
// provider

function buildProviderConfig(config, keys, cookieKeys) {
  const usersBySub = new Map(config.users.map((u) => [u.sub, u]));

  return {
    adapter: DevMemoryAdapter,
    clients: config.clients.map(clientMetadata),
    // oidc-provider v8 dropped Front-Channel Logout; this server implements it itself
    // (frontChannelUris, postLogoutSuccessSource), so clients may register its metadata.
    extraClientMetadata: {
      properties: ['frontchannel_logout_uri', 'frontchannel_logout_session_required'],
    },
    discovery: {
      claim_types_supported: ['normal'],
      frontchannel_logout_supported: true,
      frontchannel_logout_session_supported: true,
    },
    // oidc-provider's own defaults, set explicitly so it does not print a
    // "default ttl.* function called" notice for each of them.
    ttl: {
      AccessToken: 60 * 60,
      AuthorizationCode: 60,
      IdToken: 60 * 60,
      Interaction: 60 * 60,
      Session: 14 * 24 * 60 * 60,
      Grant: 14 * 24 * 60 * 60,
      RefreshToken: 14 * 24 * 60 * 60,
    },
    jwks: { keys },
    cookies: {
      keys: cookieKeys,
      // plain-http friendly: no `secure` (oidc-provider only adds it when the
      // request itself is https) and SameSite=Lax instead of the default None
      // for the long-lived session cookie (browsers drop SameSite=None
      // cookies that are not Secure, which would break http://localhost).
      long: { signed: true, httpOnly: true, sameSite: 'lax' },
      short: { signed: true, httpOnly: true, sameSite: 'lax' },
    },
    scopes: ['openid', 'profile', 'email', 'groups'],
    claims: {
      openid: ['sub'],
      profile: ['preferred_username', 'name'],
      email: ['email', 'email_verified'],
      groups: ['groups'],
    },
    conformIdTokenClaims: !config.groups_in_id_token,
    responseTypes: ['code'],
    pkce: {
      methods: ['S256'],
      required: () => true,
    },
    features: {
      devInteractions: { enabled: false },
      // RFC 9207 `iss` authorization response parameter: oidc-provider >= 7
      // always sends it (the old `features.issAuthResp` flag no longer exists
      // and is rejected as an unknown feature).
      rpInitiatedLogout: {
        enabled: true,
        logoutSource,
        postLogoutSuccessSource,
      },
      backchannelLogout: { enabled: true },
      introspection: { enabled: false },
      revocation: { enabled: true },
      userinfo: { enabled: true },
    },
    interactions: {
      url: (ctx, interaction) => `/interaction/${interaction.uid}`,
    },
    async findAccount(ctx, sub) {
      const user = usersBySub.get(sub);
      if (!user) return undefined;
      return {
        accountId: sub,
        async claims() {
          return {
            sub,
            preferred_username: user.username,
            name: user.name,
            email: user.email,
            email_verified: user.email_verified,
            groups: user.groups ?? [],
          };
        },
      };
    },
    clientBasedCORS: () => true, // dev only: allow browser CORS calls from any origin
    async renderError(ctx, out) {
      ctx.type = 'html';
      ctx.body = page(`
<h1>Pocket ID (demo)</h1>
<p class="sub"><strong>${esc(out.error)}</strong></p>
<p class="sub">${esc(out.error_description || '')}</p>
`);
    },
  };
}

// Front-Channel Logout 1.0, which oidc-provider v8 no longer implements: when the logout page
// is shown, remember the front-channel URIs (with `iss` and the client's `sid`) of every client
// in the browser's session; once the logout is confirmed, the success page loads each in an
// iframe. Keyed by a random value in a short cookie, kept in memory like everything else here.
const FRONT_CHANNEL = new Map(); // key -> [url, ...]
const FRONT_CHANNEL_COOKIE = 'devprovider.frontchannel';

async function frontChannelUris(ctx) {
  const { session } = ctx.oidc;
  const urls = [];
  for (const clientId of Object.keys(session?.authorizations || {})) {
    // eslint-disable-next-line no-await-in-loop
    const client = await ctx.oidc.provider.Client.find(clientId);
    const uri = client?.['frontchannel_logout_uri'];
    if (!uri) continue;
    const url = new URL(uri);
    if (client['frontchannel_logout_session_required']) {
      url.searchParams.set('iss', ctx.oidc.provider.issuer);
      url.searchParams.set('sid', session.sidFor(clientId));
    }
    urls.push(url.href);
  }
  return urls;
}

async function logoutSource(ctx, form) {
  const frontChannel = await frontChannelUris(ctx);
  if (frontChannel.length) {
    const key = crypto.randomBytes(16).toString('hex');
    FRONT_CHANNEL.set(key, frontChannel);
    ctx.cookies.set(FRONT_CHANNEL_COOKIE, key, { signed: false, httpOnly: true, sameSite: 'lax' });
  }
  // `form` is the xsrf form (id="op.logoutForm") provided by oidc-provider.
  // With an id_token_hint the RP is identified, so sign out without asking
  // (one-click demo); otherwise ask for confirmation.
  const auto = Boolean(ctx.oidc.params.id_token_hint);
  const clientName = ctx.oidc.client ? (ctx.oidc.client.clientName || ctx.oidc.client.clientId) : null;
  const buttons = `
<button autofocus type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button>
<button class="secondary" type="submit" form="op.logoutForm">No, stay signed in</button>`;
  ctx.type = 'html';
  ctx.body = page(`
<h1>Pocket ID (demo)</h1>
<p class="sub">${auto ? 'Signing you out…' : `Do you want to sign out${clientName ? ` of <strong>${esc(clientName)}</strong>` : ''}?`}</p>
${form}
${auto ? `<noscript>${buttons}</noscript>` : buttons}
`, {
    head: auto ? `<script>document.addEventListener('DOMContentLoaded',function(){var f=document.getElementById('op.logoutForm');var i=document.createElement('input');i.type='hidden';i.name='logout';i.value='yes';f.appendChild(i);f.submit();});</script>` : '',
  });
}

async function postLogoutSuccessSource(ctx) {
  const key = ctx.cookies.get(FRONT_CHANNEL_COOKIE, { signed: false });
  const frontChannel = (key && FRONT_CHANNEL.get(key)) || [];
  if (key) {
    FRONT_CHANNEL.delete(key);
    ctx.cookies.set(FRONT_CHANNEL_COOKIE, null, { signed: false });
  }
  const frames = frontChannel
    .map((url) => `<iframe class="frontchannel" src="${esc(url)}" title="Signing out of an application" width="0" height="0" hidden></iframe>`)
    .join('\n');
  ctx.type = 'html';
  ctx.body = page(`
<h1>Pocket ID (demo)</h1>
<p class="sub"><strong>Signed out</strong></p>
<p class="sub">You have been signed out.</p>
${frames}
`);
}

function createProvider(config, keys, cookieKeys) {
  const provider = new Provider(config.issuer, buildProviderConfig(config, keys, cookieKeys));
  // oidc-provider puts `sid` into ID tokens only for back-channel clients; front-channel
  // clients need it just as much (Front-Channel Logout 1.0 §3).
  const includeSid = provider.Client.prototype.includeSid;
  provider.Client.prototype.includeSid = function includeSidForFrontChannel() {
    return includeSid.call(this) || Boolean(this['frontchannel_logout_uri'] && this['frontchannel_logout_session_required']);
  };
  // Behind nothing: plain http on loopback. Do not trust X-Forwarded-*.
  provider.proxy = false;

  for (const event of ERROR_EVENTS) {
    provider.on(event, (ctx, err) => {
      const e = err;
      const name = e?.error || e?.name || 'error';
      const desc = e?.error_description || e?.message || '';
      const detail = e?.error_detail ? ` (${e.error_detail})` : '';
      logErr(`${event}: ${name}: ${desc}${detail}`);
    });
  }
  provider.on('server_error', (ctx, err) => {
    logErr(`server_error on ${ctx?.method} ${ctx?.path}: ${err?.stack || err}`);
  });
  return provider;
}

// ---------------------------------------------------------------------------
// interaction handlers (login form + automatic consent)

async function handleInteraction(state, req, res, uid, action) {
  const { provider, config } = state;
  let details;
  try {
    details = await provider.interactionDetails(req, res);
  } catch (err) {
    logErr(`interaction ${uid}: ${err.error_description || err.message}`);
    send(res, 400, messagePage('Sign-in session expired',
      'This sign-in request is no longer valid. Go back to the application and start again.'));
    return;
  }
  if (details.uid !== uid) {
    send(res, 400, messagePage('Sign-in session mismatch',
      'Another sign-in is in progress in this browser. Go back to the application and start again.'));
    return;
  }

  const { prompt, params } = details;
  const client = await provider.Client.find(String(params.client_id));
  const clientName = client ? (client.clientName || client.clientId) : String(params.client_id);
  const usernames = config.users.map((u) => u.username);

  if (action === 'abort') {
    await provider.interactionFinished(req, res, {
      error: 'access_denied',
      error_description: 'End-User aborted interaction',
    }, { mergeWithLastSubmission: false });
    return;
  }

  if (prompt.name === 'login') {
    if (action === 'login' && req.method === 'POST') {
      const form = new URLSearchParams(await readBody(req));
      const username = (form.get('username') || '').trim();
      const password = form.get('password') || '';
      const user = config.users.find((u) => u.username === username);
      if (!user || !safeEqual(user.password, password)) {
        send(res, 200, loginPage({
          uid, clientName, usernames, username, error: 'Invalid username or password',
        }));
        return;
      }
      await provider.interactionFinished(req, res, {
        login: { accountId: user.sub },
      }, { mergeWithLastSubmission: false });
      return;
    }
    if (req.method !== 'GET' || action) {
      send(res, 405, messagePage('Method not allowed', `${req.method} is not allowed here.`), undefined, { Allow: 'GET' });
      return;
    }
    send(res, 200, loginPage({
      uid, clientName, usernames, username: params.login_hint || '', error: null,
    }));
    return;
  }

  if (prompt.name === 'consent') {
    // Auto-grant everything that was requested (no consent page).
    const { session: { accountId } } = details;
    let { grantId } = details;
    let grant;
    if (grantId) {
      grant = await provider.Grant.find(grantId);
    }
    if (!grant) {
      grant = new provider.Grant({ accountId, clientId: String(params.client_id) });
      grantId = undefined;
    }
    const { details: missing } = prompt;
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    if (missing.missingResourceScopes) {
      for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes)) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
    }
    const savedId = await grant.save();
    const consent = {};
    if (!grantId) consent.grantId = savedId;
    await provider.interactionFinished(req, res, { consent }, { mergeWithLastSubmission: true });
    return;
  }

  send(res, 400, messagePage('Unsupported prompt', `Prompt "${prompt.name}" is not supported by this dev provider.`));
}

// ---------------------------------------------------------------------------
// main

function main() {
  const config = loadConfig();
  const cookieKeys = [crypto.randomBytes(32).toString('hex'), crypto.randomBytes(32).toString('hex')];
  const state = {
    config,
    keys: loadOrCreateKeys(config.rotate_keys_file),
    provider: null,
    handler: null,
  };
  state.provider = createProvider(config, state.keys, cookieKeys);
  state.handler = state.provider.callback();

  function rotateKeys() {
    const key = newSigningKey();
    const keys = [key, ...state.keys];
    // oidc-provider reads `jwks` only at construction: build a new Provider and
    // swap it in. DevMemoryAdapter's store is module-level and the cookie keys
    // are reused, so sessions, grants and tokens survive the swap.
    const provider = createProvider(config, keys, cookieKeys);
    state.keys = keys;
    state.provider = provider;
    state.handler = provider.callback();
    saveKeys(config.rotate_keys_file, keys);
    return key;
  }

  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://devprovider.invalid');
    try {
      const m = url.pathname.match(/^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login|abort))?\/?$/);
      if (m) {
        await handleInteraction(state, req, res, m[1], m[2]);
        return;
      }
      if (url.pathname === '/__dev/rotate-keys') {
        if (req.method !== 'POST') {
          res.setHeader('Allow', 'POST');
          sendJson(res, 405, { error: 'method_not_allowed' });
          return;
        }
        const key = rotateKeys();
        sendJson(res, 200, { signing_kid: key.kid, keys: state.keys.map(publicJwk) });
        return;
      }
      state.handler(req, res);
    } catch (err) {
      logErr(`unhandled error on ${req.method} ${url.pathname}: ${err?.stack || err}`);
      if (!res.headersSent) send(res, 500, messagePage('Server error', 'Something went wrong.'));
      else res.destroy();
    }
  });

  server.on('error', (err) => {
    logErr(`server error: ${err.message}`);
    process.exit(1);
  });

  server.listen(config.port, config.host, () => {
    process.stdout.write(`devprovider listening on ${config.issuer}\n`);
  });

  let stopping = false;
  function stop(signal) {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`devprovider stopping (${signal})\n`);
    server.close(() => process.exit(0));
    server.closeAllConnections?.();
    setTimeout(() => process.exit(0), 2000).unref();
  }
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main();
