// Unit tests: see below.
