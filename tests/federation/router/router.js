// A province's federation router over OneWindow city subgraphs: Apollo Gateway composing them at start-up from
// each subgraph's `_service { sdl }` (IntrospectAndCompose), served by Apollo Server on loopback.
//
//   node router.js --port 0 --subgraph city-a=http://127.0.0.1:8101/graphql --subgraph city-b=http://...
//
// Once it listens it prints one JSON line, {"url": "http://127.0.0.1:<port>/"}. Every subgraph request carries the
// caller's credentials (Authorization, X-API-Key) and X-OneWindow-Purpose header (and X-Request-Id), as
// docs/federation.md asks of a router, and nothing of the router's own.
//
// Composition has no caller: the router reads each city's `_service { sdl }` under an API key of its own, taken from
// the environment (never the command line, which any local user can read):
//
//   ROUTER_COMPOSITION_KEYS='{"city-a": "owk_...", "city-b": "owk_..."}'     (subgraph name: API key)
"use strict";

const { parseArgs } = require("node:util");
const { ApolloServer } = require("@apollo/server");
const { startStandaloneServer } = require("@apollo/server/standalone");
const { ApolloGateway, IntrospectAndCompose, RemoteGraphQLDataSource } = require("@apollo/gateway");

const FORWARDED = ["authorization", "x-api-key", "x-onewindow-purpose", "x-request-id"];

class ForwardingDataSource extends RemoteGraphQLDataSource {
  willSendRequest({ request, context }) {
    const incoming = context && context.headers;
    if (!incoming) {
      // the composition's own `_service` query: no caller, so the router's own key (if the city needs one)
      if (this.compositionKey) request.http.headers.set("x-api-key", this.compositionKey);
      return;
    }
    for (const name of FORWARDED) {
      if (typeof incoming[name] === "string") request.http.headers.set(name, incoming[name]);
    }
  }
}

async function main() {
  const { values } = parseArgs({
    options: {
      port: { type: "string", default: "0" },
      subgraph: { type: "string", multiple: true, default: [] },
    },
  });
  const subgraphs = values.subgraph.map((entry) => {
    const at = entry.indexOf("=");
    if (at < 1) throw new Error(`--subgraph takes name=url, got ${entry}`);
    return { name: entry.slice(0, at), url: entry.slice(at + 1) };
  });
  const keys = JSON.parse(process.env.ROUTER_COMPOSITION_KEYS || "{}");
  const gateway = new ApolloGateway({
    supergraphSdl: new IntrospectAndCompose({ subgraphs }),
    buildService: ({ name, url }) => new ForwardingDataSource({ url, compositionKey: keys[name] }),
  });
  const server = new ApolloServer({ gateway, introspection: true });
  const { url } = await startStandaloneServer(server, {
    listen: { host: "127.0.0.1", port: Number(values.port) },
    context: async ({ req }) => ({ headers: req.headers }),
  });
  process.stdout.write(JSON.stringify({ url }) + "\n");
  const stop = () => server.stop().then(() => process.exit(0));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main().catch((error) => {
  process.stderr.write(`router failed to start: ${error.stack || error}\n`);
  process.exit(1);
});
