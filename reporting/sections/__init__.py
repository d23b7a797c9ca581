"""One module per report section; each public function is what one ``.qmd`` chunk displays."""
