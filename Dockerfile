# The moderating SFU: `docker build -t moderating-sfu . && docker run -p 8080:8080 -p 40000-40199:40000-40199/udp \
#   -e ANNOUNCED_ADDRESS=<host IP> moderating-sfu`. Media is UDP on a fixed range so it can be published.

# mediasoup-worker: scripts/mediasoup-worker/build.sh tries mediasoup's prebuilt binary, else builds
# node_modules/mediasoup/worker against Debian's libraries (mediasoup's own build needs PyPI).
FROM node:24-bookworm-slim AS mediasoup-worker
RUN apt-get update \
    && apt-get install -y --no-install-recommends meson ninja-build g++ pkg-config patch \
       libuv1-dev libssl-dev libsrtp2-dev libabsl-dev libflatbuffers-dev flatbuffers-compiler \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /build
COPY package.json package-lock.json .npmrc ./
# Only the worker sources are needed here: no install scripts (mediasoup's would build it itself).
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund
COPY scripts/mediasoup-worker scripts/mediasoup-worker
RUN MEDIASOUP_WORKER_CACHE=/opt/mediasoup-cache bash scripts/mediasoup-worker/build.sh \
    && cp "$(readlink -f node_modules/mediasoup/worker/out/Release/mediasoup-worker)" /opt/mediasoup-worker

FROM node:24-bookworm-slim

# MODE=production: AUTH_SECRET (32+ characters) is required, no tokens are printed, no anonymous
# viewers unless ANONYMOUS_VIEWERS=true. `docker run -e MODE=dev` for a local try-out.
ENV NODE_ENV=production \
    MODE=production \
    ONNXRUNTIME_NODE_INSTALL=skip \
    PORT=8080 \
    HOST=0.0.0.0 \
    MEDIA_LISTEN_ADDRESS=0.0.0.0 \
    UDP_PORT_RANGE=40000-40199 \
    MODEL_CACHE_DIR=/app/.cache/models \
    MEDIASOUP_WORKER_BIN=/usr/local/bin/mediasoup-worker

# The worker's shared libraries (ldd: libuv.so.1, libssl.so.3 + libcrypto.so.3, libabsl_{strings,
# strings_internal,bad_optional_access,throw_delegate,raw_logging_internal}.so.20220623; libstdc++6/
# libgcc-s1/libc6 are in the base image). libsrtp is linked in, built on OpenSSL from Debian's source;
# libsrtp2-1 (with libnss3/libnspr4) is for a build that could not fetch that source and linked Debian's.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libuv1 libssl3 libsrtp2-1 libabsl20220623 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=mediasoup-worker /opt/mediasoup-worker /usr/local/bin/mediasoup-worker

WORKDIR /app
COPY package.json package-lock.json .npmrc ./
# Runtime dependencies only (playwright-core, typescript are for tests); tsx runs the TypeScript.
# package.json allowScripts runs esbuild's postinstall only: mediasoup's would fetch or build a worker
# itself (MEDIASOUP_WORKER_BIN makes it skip that too), node-av's and onnxruntime-node's download extras
# from GitHub (the FFmpeg CLI; CUDA, which ONNXRUNTIME_NODE_INSTALL=skip also declines).
RUN npm ci --omit=dev && npm cache clean --force
COPY . .
RUN mkdir -p /app/.cache/models /app/.data/outbox && chown -R node:node /app/.cache /app/.data
USER node

EXPOSE 8080/tcp 40000-40199/udp
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# npm start = tsx server/main.ts; SIGTERM from `docker stop` shuts down gracefully.
CMD ["npm", "start", "--silent"]
