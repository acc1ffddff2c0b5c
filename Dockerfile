# The moderating SFU: `docker build -t moderating-sfu . && docker run -p 8080:8080 -p 40000-40199:40000-40199/udp \
#   -e ANNOUNCED_ADDRESS=<host IP> moderating-sfu`. Media is UDP on a fixed range so it can be published.
FROM node:20-bookworm-slim

ENV NODE_ENV=production \
    ONNXRUNTIME_NODE_INSTALL=skip \
    PORT=8080 \
    HOST=0.0.0.0 \
    MEDIA_LISTEN_ADDRESS=0.0.0.0 \
    UDP_PORT_RANGE=40000-40199 \
    MODEL_CACHE_DIR=/app/.cache/models

WORKDIR /app
COPY package.json package-lock.json .npmrc ./
# Runtime dependencies only (playwright-core, typescript are for tests); tsx runs the TypeScript.
RUN npm ci --omit=dev && npm cache clean --force
COPY . .
RUN mkdir -p /app/.cache/models && chown -R node:node /app/.cache
USER node

EXPOSE 8080/tcp 40000-40199/udp
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# npm start = tsx server/main.ts; SIGTERM from `docker stop` shuts down gracefully.
CMD ["npm", "start", "--silent"]
