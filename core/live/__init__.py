"""Live sources: a consistent cut of a source an application keeps writing, the changes
since a cut (catch-up), and following them until cutover.

* ``cut.py``      a point-in-time private copy of an embedded Chroma directory, taken
                  without a lock the application waits on, re-taken when a write raced it;
* ``changes.py``  what changed between two cuts (records by their seq ids, deletes by the
                  ids the target may hold), in bounded memory;
* ``store.py``    the journal's record of each collection's cut watermark and lag;
* ``catchup.py``  applies the changes to the target (one pass) and measures the lag;
* ``follow.py``   catch-up in a loop until cancelled or cut over.

docs/live-migration.md says what a cut means, what a follower can miss and the order of
dual-write and bulk copy.
"""
