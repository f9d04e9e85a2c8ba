# Keyhole's image: `docker build -t keyhole .` (see README, "Containers (Docker)").
# No Docker engine runs on our CI machines, so CI never builds this file; test/deploy/dockerfile.test.ts
# checks that it runs the same install, build and start commands as .ci/run and package.json.

# ---- build: install everything, compile TypeScript, then drop the dev dependencies ----
FROM node:20-bookworm-slim AS build
# argon2 and better-sqlite3 are native addons: when no prebuilt binary fits, node-gyp compiles them.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
# The same install as .ci/run: exactly the lockfile, dev dependencies included (tsc is one).
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# The same build as `npm start` runs first (scripts/start.mjs).
RUN npm run build
# Pruning keeps the addons compiled above, rather than building them a second time.
RUN npm prune --omit=dev

# ---- runtime: production dependencies, compiled code, views and static files ----
FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    DATABASE_PATH=/app/data/app.db
WORKDIR /app
# src/paths.ts finds views/ and public/ beside the nearest package.json above dist/src/.
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY views ./views
COPY public ./public
# The API's description: /api/openapi.yaml serves it and /api/docs is rendered from it (src/api/openapi-document.ts).
COPY openapi.yaml ./
# The code stays root's and read-only to the site; only the SQLite folder is the site's own (used
# when DATABASE_URL is not set: one instance, with a volume on /app/data).
RUN mkdir -p /app/data && chown node:node /app/data
USER node
EXPOSE 3000
# Node's own fetch: the slim image has no curl or wget. /healthz answers 503 while the database does not.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/healthz', { signal: AbortSignal.timeout(4000) }).then((res) => process.exit(res.ok ? 0 : 1), () => process.exit(1))"]
# What `npm start` runs once it has built; the image is built already, and has no tsc to build with.
CMD ["node", "dist/src/server.js"]
