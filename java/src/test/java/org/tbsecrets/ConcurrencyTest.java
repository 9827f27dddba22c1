package org.tbsecrets;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Many threads on one store: consistent reads under rotation, and close racing calls. */
class ConcurrencyTest {
    @TempDir Path dir;

    @Test
    @Timeout(300)
    void sixteenReadersSeeOnlyWrittenValuesWhileAWriterRotates() throws Exception {
        List<String> values = IntStream.range(0, 50)
                .mapToObj(i -> "value-" + i + "-" + "x".repeat(i % 7) + "-ü")
                .collect(Collectors.toList());
        Set<String> written = ConcurrentHashMap.newKeySet();
        try (SecretStorage store = Fixtures.open(dir)) {
            store.create("t", "rotating", SecretType.TEXT, values.get(0).getBytes(UTF_8), "");
            written.add(values.get(0));
            AtomicBoolean done = new AtomicBoolean();
            AtomicLong updates = new AtomicLong();
            Thread writer = new Thread(() -> {
                for (int i = 1; !done.get(); i++) {
                    String v = values.get(i % values.size());
                    written.add(v); // before the write: a reader may see it right after
                    store.updateValue("t", "rotating", v.getBytes(UTF_8));
                    updates.incrementAndGet();
                }
            });
            writer.start();
            ExecutorService readers = Executors.newFixedThreadPool(16);
            try {
                List<Future<Integer>> results = new ArrayList<>();
                for (int r = 0; r < 16; r++) {
                    results.add(readers.submit(() -> {
                        int distinct = 0;
                        String last = null;
                        for (int i = 0; i < 10_000; i++) {
                            String v = store.getSecret("t", "rotating");
                            if (!written.contains(v)) {
                                throw new AssertionError("read a value that was never written: " + v.length() + " chars");
                            }
                            if (!v.equals(last)) {
                                distinct++;
                                last = v;
                            }
                        }
                        return distinct;
                    }));
                }
                int changes = 0;
                for (Future<Integer> f : results) {
                    changes += f.get(240, TimeUnit.SECONDS);
                }
                done.set(true);
                writer.join();
                assertTrue(updates.get() > 0, "the writer made progress");
                assertTrue(changes >= 16, "every reader read at least one value");
            } finally {
                done.set(true);
                readers.shutdownNow();
            }
        }
    }

    @Test
    @Timeout(120)
    void closeWhileEightThreadsAreCallingNeverCrashes() throws Exception {
        for (int round = 0; round < 20; round++) {
            SecretStorage store = Fixtures.open(java.nio.file.Files.createDirectories(dir.resolve("r" + round)));
            store.create("t", "k" + round, SecretType.TEXT, "v".getBytes(UTF_8), "");
            store.create("t", "pem" + round, SecretType.TEXT_FILE, "pem".getBytes(UTF_8), "");
            String name = "k" + round;
            String doc = "{\"a\": \"${secret:" + name + "}\"}";
            CountDownLatch started = new CountDownLatch(8);
            AtomicLong completed = new AtomicLong();
            AtomicLong refused = new AtomicLong();
            List<Throwable> unexpected = new ArrayList<>();
            List<Thread> threads = new ArrayList<>();
            for (int t = 0; t < 8; t++) {
                int kind = t % 4;
                Thread thread = new Thread(() -> {
                    started.countDown();
                    while (true) {
                        try {
                            switch (kind) {
                                case 0 -> assertEquals("v", store.getSecret("t", name));
                                case 1 -> assertEquals("{\"a\": \"v\"}", store.resolve("t", doc));
                                case 2 -> assertEquals(3, store.getSecretBytes("t", "pem" + name.substring(1)).length);
                                default -> store.info("t", name);
                            }
                            completed.incrementAndGet();
                        } catch (IllegalStateException closed) {
                            refused.incrementAndGet();
                            return;
                        } catch (Throwable other) {
                            synchronized (unexpected) {
                                unexpected.add(other);
                            }
                            return;
                        }
                    }
                });
                threads.add(thread);
                thread.start();
            }
            started.await();
            Thread.sleep(2 + round % 5);
            store.close();
            for (Thread thread : threads) {
                thread.join(30_000);
            }
            assertEquals(List.of(), unexpected);
            assertEquals(8, refused.get(), "every thread ended with IllegalStateException");
            assertTrue(completed.get() > 0);
            assertThrows(IllegalStateException.class, () -> store.getSecret("t", name));
            store.close();
        }
    }
}
