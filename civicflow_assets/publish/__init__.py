"""Publishing to CKAN: the local CKAN portal for development and tests, and its Solr stand-in."""
