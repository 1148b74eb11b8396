//! Integration tests: drive the real nib binary.
