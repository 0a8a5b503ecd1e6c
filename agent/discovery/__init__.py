"""LAN discovery: which devices answer on the agency's subnets and which risky TCP
services they expose.

Safety first (`targets`): only configured or attached private subnets, bounded in
size, are ever probed. Hosts are found by an ARP sweep in two passes (`arp`); live
hosts only are probed with TCP SYN (`synprobe`) or, where raw sockets are refused,
TCP connect (`connect`). scapy is imported lazily inside the functions that send
packets, never when the agent starts (the `scan` extra).
"""
