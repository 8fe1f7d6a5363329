"""The suite's imports are frozen out of the garbage collector's full collections
(conftest.py's pytest_collection_finish), while what tests make is still collected."""

import gc


def test_the_imported_heap_is_frozen_and_new_garbage_is_still_collected():
    # Most of what the collector tracks is the frozen imports, not the objects tests made.
    assert gc.get_freeze_count() > len(gc.get_objects())

    class Cycle:
        pass

    cycle = Cycle()
    cycle.self = cycle
    del cycle
    assert gc.collect() >= 1
