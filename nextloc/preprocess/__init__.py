"""Raw GPS tracks to a dataset folder (trackintel). Built on nextloc.core and nextloc.data;
never imports nextloc.models."""
