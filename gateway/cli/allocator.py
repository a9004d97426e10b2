"""Large blocks of memory go back to the system as soon as they are freed, in the gateway's own processes.

glibc's malloc serves a block from its heaps, which keep freed memory for later, unless the block is at least its
mmap threshold: such a block is mapped on its own and unmapped when freed. The threshold starts at 128 KiB but
rises to the size of each mapped block freed (up to 32 MiB), so once one large message has been handled, the
copies of the next ones come from the heaps and their memory stays with the process. Measured on ``mail-gateway
serve`` in queued mode: after four 30 MB raw messages were delivered it kept 419 MB of RSS (113 MB before them);
with the threshold fixed at 1 MiB, 86 MB. Fixed, it also stops rising: blocks below it are served as before.

``malloc_trim`` after each large body would do the same only where it is called, and the copies of a request
body are freed in several places (the server, the parser, the store); the threshold covers them all. Set by the
long-running commands only: an application using the gateway as a library keeps its allocator as it is.
"""

from __future__ import annotations

import ctypes
import platform

M_MMAP_THRESHOLD = -3  # mallopt's parameter, from glibc's <malloc.h>
LARGE_BLOCK = 1 << 20


def return_large_blocks() -> None:
    """Map every block of ``LARGE_BLOCK`` bytes or more on its own (glibc only; elsewhere nothing changes)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return
    mallopt = ctypes.CDLL(None).mallopt
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt(M_MMAP_THRESHOLD, LARGE_BLOCK)
