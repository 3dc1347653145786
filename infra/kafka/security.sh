#!/usr/bin/env bash
# The secured broker's material, made once into var/kafka-security (sourced by kafka.sh):
# a local CA, the broker's TLS key and certificate (PEM, what the broker's keystore reads), and
# one random SCRAM-SHA-512 password per principal. Private files are mode 0600 in a 0700 folder.
# Clients find everything here: ca.crt, and users/<principal> holding that principal's password.

SECURITY_DIR=$VAR_DIR/kafka-security
# One principal per service, `admin` for the CLI's admin tasks (a super user, as is `broker`,
# the nodes' own), `client` for users' applications (the Python client and kcat). Their ACLs are
# services/common/kafka_acls.py, applied when topics are made.
PRINCIPALS=(broker admin trainer scorer drift alerting registry client)

insecure() { [[ ${STREAMOPS_INSECURE:-0} == 1 ]]; }

password_of() { cat "$SECURITY_DIR/users/$1"; }

make_security() {
  [[ -f $SECURITY_DIR/complete ]] && return 0
  command -v openssl >/dev/null || die "openssl not found: install it (apt-get install openssl)"
  say "making the secured broker's CA, certificate and SCRAM passwords in $SECURITY_DIR"
  local partial=$SECURITY_DIR.partial
  rm -rf "$partial"
  (
    umask 077
    mkdir -p "$partial/users"
    cd "$partial"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
      -subj "/CN=streamops local CA" -keyout ca.key -out ca.crt 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -subj "/CN=broker" -keyout broker.key -out broker.csr 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' >ext.cnf
    openssl x509 -req -in broker.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile ext.cnf -out broker.crt 2>/dev/null
    # The keystore the broker reads: its PKCS#8 key, then its certificate chain.
    openssl pkcs8 -topk8 -nocrypt -in broker.key -out broker.pem
    cat broker.crt ca.crt >>broker.pem
    rm -f broker.csr broker.key broker.crt ext.cnf ca.srl
    chmod 0644 ca.crt
    local p
    for p in "${PRINCIPALS[@]}"; do
      head -c 24 /dev/urandom | base64 | tr -d '/+=\n' >"users/$p"
    done
    # librdkafka properties for people's own tools (kcat -F, confluent-kafka): the users'
    # applications' login and the admin's.
    for p in client admin; do
      printf 'security.protocol=SASL_SSL\nsasl.mechanisms=SCRAM-SHA-512\nsasl.username=%s\nsasl.password=%s\nssl.ca.location=%s\n' \
        "$p" "$(cat "users/$p")" "$SECURITY_DIR/ca.crt" >"$p.properties"
    done
  ) || die "could not make the TLS material (openssl failed); remove $partial and retry"
  mkdir -p "$SECURITY_DIR"
  chmod 0700 "$SECURITY_DIR"
  rm -rf "$SECURITY_DIR/users"
  mv "$partial"/* "$SECURITY_DIR"/
  rmdir "$partial"
  date -u +%FT%TZ >"$SECURITY_DIR/complete"
}

# The format tool's --add-scram options, one per principal, in a 0600 argument file that the
# java launcher expands (`java ... @file`): the passwords never appear on a command line.
scram_argfile() {
  local file=$SECURITY_DIR/format.args p
  (
    umask 077
    : >"$file"
    for p in "${PRINCIPALS[@]}"; do
      printf -- '--add-scram\nSCRAM-SHA-512=[name=%s,password=%s]\n' "$p" "$(password_of "$p")" >>"$file"
    done
  )
  echo "$file"
}

# A data dir formatted for the PLAINTEXT broker (by `make test`, or before the broker was
# secured) has no SCRAM users, so nobody could log in to it: it is moved aside, kept, and the
# secured broker starts with an empty one.
set_aside_plaintext_data() {
  [[ -f $DATA_DIR/metadata/meta.properties && ! -f $DATA_DIR/scram-users ]] || return 0
  local aside
  aside=$DATA_DIR.plaintext-$(date -u +%Y%m%dT%H%M%SZ)
  mv "$DATA_DIR" "$aside"
  echo "$NAME: NOTE: $DATA_DIR held the PLAINTEXT broker's data (no SCRAM users to log in with);" >&2
  echo "$NAME: NOTE: moved to $aside; the secured broker starts empty. Delete it when unneeded." >&2
}

# Listener lines of server.properties for the chosen mode.
listener_config() {
  if insecure; then
    cat <<PROPS
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
PROPS
    return
  fi
  cat <<PROPS
# Clients: SCRAM-SHA-512 over TLS. Nodes reach the controllers over mutual TLS (the broker's
# certificate maps to User:broker), since the controller listener cannot use SCRAM.
listeners=SASL_SSL://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=SASL_SSL://127.0.0.1:$PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=SASL_SSL
listener.security.protocol.map=CONTROLLER:SSL,SASL_SSL:SASL_SSL
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="broker" password="$(password_of broker)";
ssl.keystore.type=PEM
ssl.keystore.location=$SECURITY_DIR/broker.pem
ssl.truststore.type=PEM
ssl.truststore.location=$SECURITY_DIR/ca.crt
# TLS 1.3 with AES-128-GCM: the cheapest strong suite for the JVM's TLS, which every byte crosses.
ssl.enabled.protocols=TLSv1.3
ssl.cipher.suites=TLS_AES_128_GCM_SHA256
listener.name.controller.ssl.client.auth=required
ssl.principal.mapping.rules=RULE:^CN=([a-z]+)\$/\$1/,DEFAULT

# Nothing is allowed that an ACL does not allow; the nodes and the admin principal are super users.
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:broker;User:admin
PROPS
}

READY_SECURED=()
insecure || READY_SECURED=(--secured "$SECURITY_DIR")

# Say which broker this is, loudly when it is the open one, and leave the protocol where
# clients look for it (var/kafka-security/protocol).
announce_mode() {
  mkdir -p "$SECURITY_DIR"
  chmod 0700 "$SECURITY_DIR"
  if insecure; then
    cat >&2 <<WARN
$NAME: WARNING: STREAMOPS_INSECURE=1: PLAINTEXT listener and no authorizer. Any process on this
$NAME: WARNING: host can produce to models, deployments and governance, or delete topics.
$NAME: WARNING: Use it only for throwaway local work; unset it for the SASL_SSL broker.
WARN
    echo PLAINTEXT >"$SECURITY_DIR/protocol"
  else
    echo SASL_SSL >"$SECURITY_DIR/protocol"
  fi
}
