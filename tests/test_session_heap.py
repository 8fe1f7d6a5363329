"""The suite's imports are frozen out of the garbage collector's full collections
(conftest.py's pytest_collection_finish), while what tests make is still collected."""

import gc


def test_the_imported_heap_is_frozen_and_new_garbage_is_still_collected():
    # The imports alone hold well over 100,000 objects the collector tracks (conftest's with
    # sqlfluff's grammar loaded: about 130,000); unfrozen, the count would be 0.
    assert gc.get_freeze_count() > 100_000

    class Cycle:
        pass

    cycle = Cycle()
    cycle.self = cycle
    del cycle
    assert gc.collect() >= 1
