"""Scripts that turn dfkd artifacts into PNG pictures (and one text summary)."""
