"""The report's sections: each module says in its first line which ``report/*.qmd`` it serves.

Every public function is what one chunk displays. The hand calculations serve three sections
(01's single neurons, 02 and 03) because they read one run; ``tests/test_code_layout.py``
checks that each ``.qmd`` calls only the modules that name it.
"""
