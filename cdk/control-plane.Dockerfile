# syntax=docker/dockerfile:1
# The control plane and its SQL validator, as two images (targets) of one build:
#   control-plane  Node 20: the NestJS app (control-plane/dist), its production node_modules, the SQL templates
#   validator      Java 17: flink-sql/local-cluster in validator-only mode (--no-cluster), with the runner JAR
# Build context: the repository root (cdk/lib/control-plane.ts lists what it takes). Everything is
# built here from sources, so `cdk deploy` needs Docker but no local build output.

# --- Java: the runner JAR and the local-cluster JAR with its lib/ (tests skipped, not compiled) ---
FROM maven:3.9-eclipse-temurin-17 AS java-build
WORKDIR /src
COPY flink-sql/pom.xml flink-sql/pom.xml
COPY flink-sql/runner/pom.xml flink-sql/runner/pom.xml
COPY flink-sql/local-cluster/pom.xml flink-sql/local-cluster/pom.xml
COPY flink-sql/runner/src flink-sql/runner/src
COPY flink-sql/local-cluster/src flink-sql/local-cluster/src
RUN mvn -B -q -ntp -f flink-sql/pom.xml package -Dmaven.test.skip=true

# --- Node: every workspace's manifest (npm ci checks them against the lock), then the compile ---
FROM node:20-bookworm AS node-build
WORKDIR /src
COPY package.json package-lock.json tsconfig.base.json ./
COPY schemas/package.json schemas/package.json
COPY control-plane/package.json control-plane/package.json
COPY cdk/package.json cdk/package.json
COPY test/package.json test/package.json
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY schemas schemas
COPY control-plane control-plane
RUN node node_modules/typescript/bin/tsc -b control-plane/tsconfig.build.json

# Production dependencies of the control plane only (better-sqlite3 builds or fetches its binary here).
FROM node:20-bookworm AS node-deps
WORKDIR /src
COPY package.json package-lock.json ./
COPY schemas/package.json schemas/package.json
COPY control-plane/package.json control-plane/package.json
COPY cdk/package.json cdk/package.json
COPY test/package.json test/package.json
RUN npm ci --no-audit --no-fund --omit=dev --workspace control-plane \
 && mkdir -p control-plane/node_modules

FROM node:20-bookworm-slim AS control-plane
ENV NODE_ENV=production
WORKDIR /app
# The repository's layout, which the app resolves its files by (flink-sql/templates, schemas/*.json).
COPY --from=node-deps /src/node_modules node_modules
COPY --from=node-deps /src/control-plane/node_modules control-plane/node_modules
COPY --from=node-build /src/package.json package.json
COPY --from=node-build /src/schemas/package.json schemas/package.json
COPY --from=node-build /src/schemas/dist schemas/dist
COPY --from=node-build /src/schemas/events schemas/events
COPY --from=node-build /src/schemas/tenants schemas/tenants
COPY --from=node-build /src/schemas/analyses schemas/analyses
COPY --from=node-build /src/control-plane/package.json control-plane/package.json
COPY --from=node-build /src/control-plane/dist control-plane/dist
COPY flink-sql/templates flink-sql/templates
USER node
EXPOSE 8080
# --max-semi-space-size: as scripts/local-stack.mjs' CONTROL_PLANE_NODE_FLAGS (why: there).
CMD ["node", "--max-semi-space-size=64", "control-plane/dist/main.js"]

FROM eclipse-temurin:17-jre AS validator
WORKDIR /app
COPY --from=java-build /src/flink-sql/local-cluster/target/flagstream-local-cluster.jar flagstream-local-cluster.jar
COPY --from=java-build /src/flink-sql/local-cluster/target/lib lib
COPY --from=java-build /src/flink-sql/runner/target/flagstream-runner.jar flagstream-runner.jar
RUN useradd --system --uid 10001 flagstream
USER flagstream
# The task passes --no-cluster --validator-port … --runner-jar /app/flagstream-runner.jar --data-dir /tmp/flink.
ENTRYPOINT ["java", "-jar", "/app/flagstream-local-cluster.jar"]
