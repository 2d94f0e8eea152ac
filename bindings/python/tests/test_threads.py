import threading
from concurrent.futures import ThreadPoolExecutor

import rewardkit
from rewardkit import ScorerClosedError

THREADS, CALLS = 16, 20


def pair(t, i):
    return f"question {t} about item {i}?", f"answer {i} from thread {t}" + " more" * (i % 5)


def test_many_threads_equal_sequential(bundle):
    with rewardkit.Scorer(bundle, threads=1, max_sessions=2) as s:
        expected = {(t, i): s.score(*pair(t, i)) for t in range(THREADS) for i in range(CALLS)}
        start = threading.Barrier(THREADS)

        def work(t):
            start.wait()
            return {(t, i): s.score(*pair(t, i)) for i in range(CALLS)}

        got = {}
        with ThreadPoolExecutor(THREADS) as pool:
            for part in pool.map(work, range(THREADS)):
                got.update(part)
    assert got == expected


def test_close_while_calls_are_in_flight(bundle):
    s = rewardkit.Scorer(bundle, threads=1, max_sessions=2)
    started = threading.Barrier(5)
    outcomes = []

    def work():
        started.wait()
        done = 0
        try:
            for i in range(50):
                s.score_batch(*zip(*[pair(0, j) for j in range(4)]))
                done += 1
        except ScorerClosedError:
            pass
        outcomes.append(done)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    started.wait()
    s.close()  # waits for calls in flight; later calls raise ScorerClosedError
    for t in threads:
        t.join()
    assert s.closed and len(outcomes) == 4
