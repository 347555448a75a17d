#!/usr/bin/env node
// A real OAuth2 / OpenID Connect server for OneWindow's tests: oauth2-mock-server with hooks for shaping tokens
// and a small control API for key rotation. Started by tests/oauth2_server.py; see its docstring for the API.
//
//   node launch.js --port 8080 [--alg RS256] [--cert server.pem --key server.key [--client-ca ca.pem]]
//
// With --cert and --key it serves HTTPS; with --client-ca too it asks for a client certificate and refuses the
// handshake of a client without one that CA issued (mutual TLS, as an issuer binding tokens to certificates does).
// Prints one JSON line on stdout once listening ({"issuer": ..., "kid": ...}); stops when stdin closes.
//
// Token shaping (every grant of POST /token, form fields on top of the standard ones):
//   claims      JSON object merged into the payload; a null value removes the claim
//   header      JSON object merged into the protected header (e.g. a kid the JWKS does not hold)
//   expires_in  lifetime in seconds from iat (negative: already expired)
// Control API (JSON):
//   POST   /_control/keys        {"alg": "RS256"} -> adds a key and signs with it from now on -> {"kid": ...}
//   DELETE /_control/keys/:kid   removes a key from the JWKS (and from signing)
'use strict';

const fs = require('node:fs');
const http = require('node:http');
const https = require('node:https');
const { parseArgs } = require('node:util');
const { JWKStore, OAuth2Issuer } = require('oauth2-mock-server');
// Not re-exported by the package's index; the version is pinned by package-lock.json.
const { OAuth2Service } = require('oauth2-mock-server/dist/lib/oauth2-service');

// The stock issuer signs with its keys in turn and cannot drop one; a real issuer signs with its newest key
// and retires old ones, which is what rotation tests need.
class RotatingIssuer extends OAuth2Issuer {
  #store = new JWKStore();
  signingKid = undefined;

  get keys() {
    return this.#store;
  }

  async buildToken(opts) {
    return super.buildToken({ ...opts, kid: opts?.kid ?? this.signingKid });
  }

  async addKey(alg) {
    const jwk = await this.#store.generate(alg);
    this.signingKid = jwk.kid;
    return jwk.kid;
  }

  async removeKey(kid) {
    const kept = new JWKStore();
    let found = false;
    for (const jwk of this.#store.toJSON(true)) {
      if (jwk.kid === kid) {
        found = true;
      } else {
        await kept.add(jwk);
      }
    }
    this.#store = kept;
    if (this.signingKid === kid) {
      this.signingKid = kept.toJSON().at(-1)?.kid;
    }
    return found;
  }
}

function jsonField(body, name) {
  const raw = body[name];
  if (raw === undefined || raw === '') {
    return {};
  }
  const value = typeof raw === 'string' ? JSON.parse(raw) : raw;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new Error(`'${name}' must be a JSON object`);
  }
  return value;
}

function merge(target, changes) {
  for (const [key, value] of Object.entries(changes)) {
    if (value === null) {
      delete target[key];
    } else {
      target[key] = value;
    }
  }
}

async function main() {
  const { values } = parseArgs({
    options: {
      port: { type: 'string' },
      alg: { type: 'string', default: 'RS256' },
      cert: { type: 'string' },
      key: { type: 'string' },
      'client-ca': { type: 'string' },
    },
  });
  const port = Number(values.port ?? 0);

  const issuer = new RotatingIssuer();
  const service = new OAuth2Service(issuer);
  const firstKid = await issuer.addKey(values.alg);

  service.on('beforeTokenSigning', (token, req) => {
    const body = req.body ?? {};
    merge(token.header, jsonField(body, 'header'));
    merge(token.payload, jsonField(body, 'claims'));
    if (body.expires_in !== undefined) {
      token.payload.exp = token.payload.iat + Number(body.expires_in);
    }
  });
  service.on('beforeResponse', (response, req) => {
    if (req.body?.expires_in !== undefined && response.statusCode === 200) {
      response.body.expires_in = Number(req.body.expires_in);
    }
  });

  const app = service.requestHandler; // an express application: control routes go next to the OAuth2 ones
  app.post('/_control/keys', async (req, res, next) => {
    try {
      res.json({ kid: await issuer.addKey(req.body?.alg ?? values.alg) });
    } catch (error) {
      next(error);
    }
  });
  app.delete('/_control/keys/:kid', async (req, res, next) => {
    try {
      const found = await issuer.removeKey(req.params.kid);
      res.status(found ? 200 : 404).json({ removed: found });
    } catch (error) {
      next(error);
    }
  });

  let server;
  if (values.cert) {
    const options = { cert: fs.readFileSync(values.cert), key: fs.readFileSync(values.key) };
    if (values['client-ca']) {
      Object.assign(options, { ca: fs.readFileSync(values['client-ca']), requestCert: true, rejectUnauthorized: true });
    }
    server = https.createServer(options, app);
  } else {
    server = http.createServer(app);
  }
  await new Promise((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', resolve));
  issuer.url = `${values.cert ? 'https' : 'http'}://127.0.0.1:${server.address().port}`;

  const stop = () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  };
  process.stdin.on('end', stop).resume();
  process.on('SIGTERM', stop);
  process.stdout.write(`${JSON.stringify({ issuer: issuer.url, kid: firstKid })}\n`);
}

main().catch((error) => {
  process.stderr.write(`${error.stack ?? error}\n`);
  process.exit(1);
});
