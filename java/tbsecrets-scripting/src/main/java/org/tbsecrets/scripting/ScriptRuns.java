package org.tbsecrets.scripting;

import java.time.Duration;
import java.util.Objects;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.FutureTask;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Runs one script on its own worker thread under a timeout: on timeout the engine is cancelled,
 * the invocation closed (the script can read no more secrets) and the worker interrupted and
 * joined, so a run leaves no thread, context or open invocation behind.
 */
final class ScriptRuns {
    /** How long a cancelled worker may take to stop before the run reports it. */
    static final Duration STOP_GRACE = Duration.ofSeconds(10);

    /** Name prefix of the worker threads. */
    static final String THREAD_PREFIX = "tbsecrets-script-";

    private final AtomicInteger active = new AtomicInteger();
    private final String engine;

    ScriptRuns(String engine) {
        this.engine = engine;
    }

    int active() {
        return active.get();
    }

    /**
     * Runs {@code body} on a worker thread.
     *
     * @param inv the invocation (closed here on timeout)
     * @param body the script run
     * @param timeout how long it may take
     * @param cancel stops the engine (called from this thread on timeout)
     * @return the body's result
     */
    String run(ScriptInvocation inv, Callable<String> body, Duration timeout, Runnable cancel) {
        Objects.requireNonNull(inv, "inv");
        Objects.requireNonNull(timeout, "timeout");
        FutureTask<String> task = new FutureTask<>(body);
        Thread worker = new Thread(task, THREAD_PREFIX + engine);
        worker.setDaemon(true);
        active.incrementAndGet();
        try {
            worker.start();
            try {
                return task.get(timeout.toNanos(), TimeUnit.NANOSECONDS);
            } catch (TimeoutException e) {
                stop(inv, worker, cancel);
                throw new ScriptExecutionException(engine + " script timed out after " + timeout.toMillis() + " ms", null, true);
            } catch (InterruptedException e) {
                stop(inv, worker, cancel);
                Thread.currentThread().interrupt();
                throw new ScriptExecutionException(engine + " script interrupted", e, true);
            } catch (ExecutionException e) {
                Throwable cause = e.getCause();
                if (cause instanceof ScriptExecutionException se) {
                    throw se;
                }
                throw new ScriptExecutionException(engine + " script failed: " + cause.getMessage(), cause, false);
            }
        } finally {
            join(worker);
            active.decrementAndGet();
        }
    }

    private static void join(Thread worker) {
        try {
            worker.join(STOP_GRACE.toMillis());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void stop(ScriptInvocation inv, Thread worker, Runnable cancel) {
        try {
            cancel.run();
        } finally {
            inv.close();
            worker.interrupt();
        }
        join(worker);
        if (worker.isAlive()) {
            throw new ScriptExecutionException(engine + " script timed out and did not stop within "
                    + STOP_GRACE.toSeconds() + " s (its invocation is closed: it can read no secret)", null, true);
        }
    }
}
