package dev.flagstream.local;

import org.apache.flink.configuration.CheckpointingOptions;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.CoreOptions;
import org.apache.flink.configuration.MemorySize;
import org.apache.flink.configuration.RestOptions;
import org.apache.flink.configuration.StateBackendOptions;
import org.apache.flink.configuration.TaskManagerOptions;
import org.apache.flink.configuration.WebOptions;
import org.apache.flink.runtime.minicluster.MiniCluster;
import org.apache.flink.runtime.minicluster.MiniClusterConfiguration;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

/**
 * Local Flink 1.20 session "cluster" for development: one MiniCluster (JobManager + 1 TaskManager
 * in this JVM) with the full REST API incl. jar upload/run, plus the warm SQL validator.
 *
 * <pre>
 * --rest-port 8081        Flink REST/web port (127.0.0.1)
 * --validator-port 8082   validator HTTP port (127.0.0.1)
 * --data-dir DIR          uploads, checkpoints, savepoints, tmp (default .flagstream/flink)
 * --runner-jar JAR        runner JAR whose connector/format the validator plans with
 * --slots N               task slots (default 8)
 * --no-validator          cluster only
 * --no-cluster            validator only (e.g. when deploying to a remote / managed Flink)
 * </pre>
 */
public final class LocalFlink {
    public static void main(String[] args) throws Exception {
        int restPort = 8081;
        int validatorPort = 8082;
        int slots = 8;
        Path dataDir = Path.of(".flagstream/flink");
        Path runnerJar = Path.of("flink-sql/runner/target/flagstream-runner.jar");
        boolean cluster = true;
        boolean validator = true;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--rest-port": restPort = Integer.parseInt(args[++i]); break;
                case "--validator-port": validatorPort = Integer.parseInt(args[++i]); break;
                case "--data-dir": dataDir = Path.of(args[++i]); break;
                case "--runner-jar": runnerJar = Path.of(args[++i]); break;
                case "--slots": slots = Integer.parseInt(args[++i]); break;
                case "--no-validator": validator = false; break;
                case "--no-cluster": cluster = false; break;
                default:
                    System.err.println("unknown argument: " + args[i]);
                    System.exit(2);
            }
        }
        long t0 = System.nanoTime();
        dataDir = dataDir.toAbsolutePath().normalize();
        Files.createDirectories(dataDir.resolve("tmp"));

        if (cluster) {
            MiniCluster mc = new MiniCluster(
                    new MiniClusterConfiguration.Builder()
                            .setConfiguration(clusterConfig(restPort, dataDir, slots))
                            .setNumTaskManagers(1)
                            .setNumSlotsPerTaskManager(slots)
                            .build());
            mc.start();
            Runtime.getRuntime().addShutdownHook(new Thread(() -> {
                try { mc.close(); } catch (Exception ignored) { }
            }));
            System.out.printf("flink ready %s (%d ms)%n",
                    mc.getRestAddress().get().toString().replaceAll("/$", ""),
                    (System.nanoTime() - t0) / 1_000_000);
        }
        if (validator) {
            // After the cluster: its warm-up (planning a sample script a few times) is the slow part.
            try {
                ValidatorServer.start(validatorPort, runnerJar);
            } catch (Exception e) {
                System.err.println("validator failed to start: " + e);
                System.exit(1); // also stops the cluster: the orchestrator expects both or nothing
            }
            System.out.printf("validator ready http://127.0.0.1:%d (%d ms)%n",
                    validatorPort, (System.nanoTime() - t0) / 1_000_000);
        }
        System.out.flush();
        Thread.currentThread().join(); // run until killed (SIGTERM runs the shutdown hook)
    }

    static Configuration clusterConfig(int restPort, Path dataDir, int slots) {
        Configuration c = new Configuration();
        c.set(RestOptions.ADDRESS, "127.0.0.1");
        c.set(RestOptions.BIND_ADDRESS, "127.0.0.1");
        c.set(RestOptions.PORT, restPort);
        c.set(RestOptions.BIND_PORT, String.valueOf(restPort));
        // Loopback only: without these the blob server (and any RPC or data port the cluster
        // opens) listens on every interface.
        c.setString("jobmanager.bind-host", "127.0.0.1");
        c.setString("jobmanager.rpc.address", "127.0.0.1");
        c.setString("taskmanager.bind-host", "127.0.0.1");
        c.setString("taskmanager.host", "127.0.0.1");
        // /jars/upload + /jars/:id/run need flink-runtime-web on the classpath and these:
        c.set(WebOptions.SUBMIT_ENABLE, true);
        c.set(WebOptions.CANCEL_ENABLE, true);
        c.set(WebOptions.UPLOAD_DIR, dataDir.resolve("uploads").toString());
        c.set(WebOptions.TMP_DIR, dataDir.resolve("web-tmp").toString());
        c.set(CoreOptions.TMP_DIRS, dataDir.resolve("tmp").toString());
        // checkpoints/savepoints on local disk so stop-with-savepoint and restores work
        c.set(StateBackendOptions.STATE_BACKEND, "hashmap");
        c.set(CheckpointingOptions.CHECKPOINTS_DIRECTORY, dataDir.resolve("checkpoints").toUri().toString());
        c.set(CheckpointingOptions.SAVEPOINT_DIRECTORY, dataDir.resolve("savepoints").toUri().toString());
        c.setString("execution.checkpointing.interval", "10s"); // default; a script may SET its own
        c.setString("execution.checkpointing.min-pause", "5s");
        // a job cancelled behind the control plane's back (or a cluster killed) leaves its last
        // checkpoint, from which the control plane restores it exactly
        c.setString("execution.checkpointing.externalized-checkpoint-retention", "RETAIN_ON_CANCELLATION");
        c.setString("state.checkpoints.num-retained", "2");
        // ~8 single-parallelism jobs: 1 TM with N slots and little managed memory (no RocksDB)
        c.set(TaskManagerOptions.NUM_TASK_SLOTS, slots);
        c.set(TaskManagerOptions.MANAGED_MEMORY_SIZE, MemorySize.parse("128m"));
        c.set(TaskManagerOptions.NETWORK_MEMORY_MIN, MemorySize.parse("64m"));
        c.set(TaskManagerOptions.NETWORK_MEMORY_MAX, MemorySize.parse("64m"));
        c.setString("parallelism.default", "1");
        // jobs submitted via /jars/run load classes from the uploaded jar; its classloader is
        // released when the job ends, which the leak check would report noisily
        c.setString("classloader.check-leaked-classloader", "false");
        // a failing job restarts from its last checkpoint, waiting 10 s doubling up to 5 min
        c.setString("restart-strategy.type", "exponential-delay");
        c.setString("restart-strategy.exponential-delay.initial-backoff", "10 s");
        c.setString("restart-strategy.exponential-delay.max-backoff", "5 min");
        c.set(RestOptions.SERVER_NUM_THREADS, 4);
        c.setString("heartbeat.timeout", "60000");
        c.setString("pekko.ask.timeout", "30 s");
        c.setString("web.timeout", String.valueOf(Duration.ofSeconds(60).toMillis()));
        return c;
    }
}
