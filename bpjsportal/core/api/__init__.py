"""The API framework every app uses: one error format, the strict JSON parser."""
