#!/usr/bin/env python3
"""sqlite_insert.py DB WRITER N: N rows into table t of DB, one transaction
each, through SQLite's own fcntl locking (tests/suites/75-locks). The
busy timeout makes a writer wait while another holds the database."""
import sqlite3
import sys

db, writer, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
conn = sqlite3.connect(db, timeout=900, isolation_level=None)
for i in range(n):
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO t (writer, i) VALUES (?, ?)", (writer, i))
    conn.execute("COMMIT")
conn.close()
