# Sourced by the lab benchmarks: the lab chain `client -- r1 -- r2 -- server` of network namespaces
# `$P-client`, `$P-r1`, `$P-r2`, `$P-server` (IPv4, 198.18.0.0/15 only; the server is 198.18.2.2, 3 hops away),
# every kernel default kept. Set P (a unique prefix) before calling lab_chain_up; lab_chain_down removes it.
nodes=(client r1 r2 server)

lab_chain_down() {
  for x in "${nodes[@]}"; do ip netns del "$P-$x" 2>/dev/null || true; done
}

lab_chain_up() {
  for x in "${nodes[@]}"; do
    ip netns add "$P-$x"
    ip -n "$P-$x" link set lo up
  done
  for k in 0 1 2; do
    a=$P-${nodes[$k]}; b=$P-${nodes[$((k+1))]}
    ip -n "$a" link add east0 type veth peer name west0 netns "$b"
    ip -n "$a" addr add 198.18.$k.1/24 dev east0; ip -n "$b" addr add 198.18.$k.2/24 dev west0
    ip -n "$a" link set east0 up; ip -n "$b" link set west0 up
  done
  ip netns exec "$P-r1" sysctl -qw net.ipv4.ip_forward=1; ip netns exec "$P-r2" sysctl -qw net.ipv4.ip_forward=1
  ip -n "$P-client" route add default via 198.18.0.2
  ip -n "$P-r1" route add default via 198.18.1.2
  ip -n "$P-r2" route add 198.18.0.0/24 via 198.18.1.1
  ip -n "$P-server" route add default via 198.18.2.1
}
