#!/usr/bin/env python3
"""hang_up.py PATH [N]: connect to the unix socket PATH and close at once,
N times (10) - what a client killed while connecting does. Such a client
wedges an nng 1.5.2 listener for good; the e2e tests check that the
listener guard (transport/lguard.h) gets it serving again."""
import socket
import sys
import time

for _ in range(int(sys.argv[2]) if len(sys.argv) > 2 else 10):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sys.argv[1])
    s.close()
    time.sleep(0.02)
