"""Response and embedding caches: key normalisation and in-process / Redis backends."""
