"""LDAP: the group connector (:mod:`.groups`) and the transport it shares with the LDAP
directory source in ``accounts.directory.ldap`` (:mod:`.transport`)."""

from .groups import LdapGroupConnector

__all__ = ["LdapGroupConnector"]
