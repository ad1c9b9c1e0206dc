"""The ground floor: errors, the project layout and atomic writes, YAML config files, the
device, npz caches. Imports nothing else of nextloc."""
