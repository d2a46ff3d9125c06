// The transport conformance suite: the Transport contract (transports/transport.h) checked the
// same way for every transport in the build, with ranks as forked processes. The OFI transport
// runs once per provider that works on a plain Debian host (tcp;ofi_rxm, shm) and once with
// forced memory registration, which exercises the path NIC providers (FI_MR_LOCAL) take.
//
// Peer failure, by transport (PeerDeath prints what it saw; seen with Debian 12's libraries):
//  - ucx: the survivor's receive fails with Unavailable when the shared-memory peer goes away.
//  - ofi (tcp;ofi_rxm and shm, libfabric 1.17): neither provider reports the dead peer, so
//    operations stay pending and the driver's deadline ends them (DeadlineExceeded). A send
//    that does fail marks the peer failed and fails every receive waiting on it.
#include <dirent.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <thread>

#include "tests/transports/transport_world.h"

namespace plexus {
namespace {

using testing::runTransportRanks;
using testing::TransportRank;
using testing::TransportWorldOptions;

struct TransportCase {
  std::string label;      // gtest parameter name
  std::string transport;  // createTransport name
  std::map<std::string, std::string> env;
};

void PrintTo(const TransportCase& c, std::ostream* os) { *os << c.label; }

std::vector<TransportCase> transportCases() {
  std::vector<TransportCase> cases;
  for (const std::string& name : availableTransports()) {
    if (name == "ofi") {
      cases.push_back({"ofi_tcp", name, {{"PLEXUS_OFI_PROVIDER", "tcp"}}});
      cases.push_back({"ofi_shm", name, {{"PLEXUS_OFI_PROVIDER", "shm"}}});
      cases.push_back({"ofi_tcp_registered",
                       name,
                       {{"PLEXUS_OFI_PROVIDER", "tcp"}, {"PLEXUS_OFI_MR", "always"}}});
    } else {
      cases.push_back({name, name, {}});
    }
  }
  return cases;
}

// Byte i of the message a rank sends under `seed`.
uint8_t pattern(uint64_t seed, size_t i) {
  return static_cast<uint8_t>((seed * 131 + i * 7) ^ (i >> 9));
}

std::vector<uint8_t> payload(uint64_t seed, size_t len) {
  std::vector<uint8_t> v(len);
  for (size_t i = 0; i < len; ++i) v[i] = pattern(seed, i);
  return v;
}

size_t firstMismatch(const std::vector<uint8_t>& got, uint64_t seed) {
  for (size_t i = 0; i < got.size(); ++i) {
    if (got[i] != pattern(seed, i)) return i;
  }
  return SIZE_MAX;
}

class Conformance : public ::testing::TestWithParam<TransportCase> {
 protected:
  ::testing::AssertionResult run(int n, const std::function<void(TransportRank&)>& body,
                                 TransportWorldOptions options = {}) {
    for (const auto& [k, v] : GetParam().env) options.env[k] = v;
    return runTransportRanks(GetParam().transport, n, body, options);
  }
};

TEST_P(Conformance, ConnectsEveryPairOfThreeRanks) {
  auto body = [&](TransportRank& w) {
    EXPECT_EQ(w.transport().name(), GetParam().transport);
    EXPECT_FALSE(w.transport().describe().empty());
    EXPECT_TRUE(w.transport().supportsMemory(MemoryKind::kHost));
    std::vector<int> in(3, -1);
    std::vector<int> out(3, w.rank());
    std::vector<TransferRequest> reqs(6);
    for (int p = 0; p < 3; ++p) {
      if (p == w.rank()) {
        reqs[2 * p].done = reqs[2 * p + 1].done = true;
        continue;
      }
      EXPECT_EQ(w.peer(p).peerRank(), p);
      ASSERT_TRUE(w.peer(p).irecv(&in[p], sizeof(int), 7, &reqs[2 * p]).ok());
      ASSERT_TRUE(w.peer(p).isend(&out[p], sizeof(int), 7, &reqs[2 * p + 1]).ok());
    }
    ASSERT_TRUE(w.wait(reqs.data(), reqs.size()).ok());
    for (int p = 0; p < 3; ++p) {
      if (p == w.rank()) continue;
      EXPECT_TRUE(reqs[2 * p].status.ok()) << reqs[2 * p].status.toString();
      EXPECT_EQ(reqs[2 * p].bytes, sizeof(int));
      EXPECT_EQ(in[p], p);
    }
  };
  EXPECT_TRUE(run(3, body));
}

TEST_P(Conformance, EqualTagsMatchInSendOrder) {
  constexpr int kMessages = 64;
  auto body = [&](TransportRank& w) {
    // Mixed sizes, so eager and rendezvous protocols interleave under one tag.
    auto sizeOf = [](int i) -> size_t { return i % 8 == 3 ? 300000 : 16 + i; };
    std::vector<TransferRequest> reqs(kMessages);
    std::vector<std::vector<uint8_t>> bufs(kMessages);
    if (w.rank() == 0) {
      for (int i = 0; i < kMessages; ++i) {
        bufs[i] = payload(i, sizeOf(i));
        ASSERT_TRUE(w.peer(1).isend(bufs[i].data(), bufs[i].size(), 5, &reqs[i]).ok());
      }
      ASSERT_TRUE(w.wait(reqs.data(), reqs.size()).ok());
      return;
    }
    // Half the receives before the messages arrive, half after some are already waiting.
    for (int i = 0; i < kMessages; ++i) {
      if (i == kMessages / 2) {
        ASSERT_TRUE(w.wait(reqs.data(), i).ok());
      }
      bufs[i].resize(300000);
      ASSERT_TRUE(w.peer(0).irecv(bufs[i].data(), bufs[i].size(), 5, &reqs[i]).ok());
    }
    ASSERT_TRUE(w.wait(reqs.data(), reqs.size()).ok());
    for (int i = 0; i < kMessages; ++i) {
      ASSERT_TRUE(reqs[i].status.ok()) << reqs[i].status.toString();
      ASSERT_EQ(reqs[i].bytes, sizeOf(i)) << "message " << i << " overtaken";
      bufs[i].resize(reqs[i].bytes);
      EXPECT_EQ(firstMismatch(bufs[i], i), SIZE_MAX) << "message " << i;
    }
  };
  EXPECT_TRUE(run(2, body));
}

TEST_P(Conformance, ManyMessagesInFlightBothWays) {
  constexpr int kMessages = 500;
  constexpr size_t kBytes = 2048;
  auto body = [&](TransportRank& w) {
    int peer = 1 - w.rank();
    std::vector<std::vector<uint8_t>> in(kMessages, std::vector<uint8_t>(kBytes));
    std::vector<std::vector<uint8_t>> out(kMessages);
    std::vector<TransferRequest> reqs(2 * kMessages);
    // Receives in reverse tag order: matching is by tag, not by arrival.
    for (int i = kMessages - 1; i >= 0; --i) {
      ASSERT_TRUE(w.peer(peer).irecv(in[i].data(), kBytes, 1000 + i, &reqs[i]).ok());
    }
    for (int i = 0; i < kMessages; ++i) {
      out[i] = payload(w.rank() * kMessages + i, kBytes);
      ASSERT_TRUE(w.peer(peer).isend(out[i].data(), kBytes, 1000 + i, &reqs[kMessages + i]).ok());
    }
    ASSERT_TRUE(w.wait(reqs.data(), reqs.size()).ok());
    for (int i = 0; i < kMessages; ++i) {
      ASSERT_TRUE(reqs[i].status.ok()) << reqs[i].status.toString();
      EXPECT_EQ(firstMismatch(in[i], peer * kMessages + i), SIZE_MAX) << "message " << i;
    }
  };
  EXPECT_TRUE(run(2, body));
}

TEST_P(Conformance, ZeroOneAndLargeMessages) {
  const size_t kSizes[] = {0, 1, 4097, size_t{1} << 20, size_t{64} << 20};
  auto body = [&](TransportRank& w) {
    int peer = 1 - w.rank();
    for (size_t len : kSizes) {
      SCOPED_TRACE(std::to_string(len) + " bytes");
      std::vector<uint8_t> out = payload(w.rank() + len, len);
      std::vector<uint8_t> in(len + 1, 0xEE);  // one spare byte that must stay untouched
      TransferRequest reqs[2];
      ASSERT_TRUE(w.peer(peer).irecv(in.data(), in.size(), 3, &reqs[0]).ok());
      ASSERT_TRUE(w.peer(peer).isend(out.data(), len, 3, &reqs[1]).ok());
      ASSERT_TRUE(w.wait(reqs, 2).ok());
      ASSERT_TRUE(reqs[0].status.ok()) << reqs[0].status.toString();
      ASSERT_TRUE(reqs[1].status.ok()) << reqs[1].status.toString();
      ASSERT_EQ(reqs[0].bytes, len);
      EXPECT_EQ(in[len], 0xEE);
      in.resize(len);
      EXPECT_EQ(firstMismatch(in, peer + len), SIZE_MAX);
    }
  };
  EXPECT_TRUE(run(2, body));
}

TEST_P(Conformance, MessagesSentBeforeTheReceiveIsPostedAreKept) {
  const size_t kSizes[] = {1, 4096, size_t{8} << 20};
  auto body = [&](TransportRank& w) {
    std::vector<TransferRequest> reqs(3);
    std::vector<std::vector<uint8_t>> bufs(3);
    if (w.rank() == 0) {
      for (int i = 0; i < 3; ++i) {
        bufs[i] = payload(i, kSizes[i]);
        ASSERT_TRUE(w.peer(1).isend(bufs[i].data(), kSizes[i], 40 + i, &reqs[i]).ok());
      }
      ASSERT_TRUE(w.wait(reqs.data(), 3).ok());
      return;
    }
    // Let the messages arrive (and the transport take them in) before any receive exists.
    auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
    while (std::chrono::steady_clock::now() < until) w.transport().progress();
    for (int i = 2; i >= 0; --i) {
      bufs[i].resize(kSizes[i]);
      ASSERT_TRUE(w.peer(0).irecv(bufs[i].data(), kSizes[i], 40 + i, &reqs[i]).ok());
    }
    ASSERT_TRUE(w.wait(reqs.data(), 3).ok());
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(reqs[i].status.ok()) << reqs[i].status.toString();
      EXPECT_EQ(firstMismatch(bufs[i], i), SIZE_MAX) << kSizes[i] << " bytes";
    }
  };
  EXPECT_TRUE(run(2, body));
}

TEST_P(Conformance, TruncationFailsTheReceiveAndTheLinkSurvives) {
  auto body = [&](TransportRank& w) {
    std::vector<uint8_t> big = payload(1, 1000), small(100), after(8);
    TransferRequest reqs[2];
    if (w.rank() == 0) {
      ASSERT_TRUE(w.peer(1).isend(big.data(), big.size(), 1, &reqs[0]).ok());
      ASSERT_TRUE(w.peer(1).isend(big.data(), 8, 2, &reqs[1]).ok());
      ASSERT_TRUE(w.wait(reqs, 2).ok());  // the sender may or may not learn of the truncation
      return;
    }
    ASSERT_TRUE(w.peer(0).irecv(small.data(), small.size(), 1, &reqs[0]).ok());
    ASSERT_TRUE(w.peer(0).irecv(after.data(), after.size(), 2, &reqs[1]).ok());
    ASSERT_TRUE(w.wait(reqs, 2).ok());
    EXPECT_FALSE(reqs[0].status.ok());
    EXPECT_NE(reqs[0].status.message().find("longer than the posted buffer"), std::string::npos)
        << reqs[0].status.toString();
    ASSERT_TRUE(reqs[1].status.ok()) << reqs[1].status.toString();
    EXPECT_EQ(firstMismatch(after, 1), SIZE_MAX);
  };
  EXPECT_TRUE(run(2, body));
}

TEST_P(Conformance, CancelEndsAPendingReceive) {
  auto body = [&](TransportRank& w) {
    int peer = 1 - w.rank();
    char never[16];
    TransferRequest req;
    ASSERT_TRUE(w.peer(peer).irecv(never, sizeof(never), 12345, &req).ok());
    w.transport().progress();
    EXPECT_FALSE(req.done);
    w.transport().cancel(&req);
    ASSERT_TRUE(w.wait(&req, 1, std::chrono::seconds(5)).ok());
    EXPECT_EQ(req.status.code(), StatusCode::kAborted) << req.status.toString();
    w.transport().cancel(&req);  // a done request is left alone
    EXPECT_TRUE(req.done);
  };
  EXPECT_TRUE(run(2, body));
}

TEST_P(Conformance, PeerDeathSurfacesAsAnErrorOrATimeout) {
  TransportWorldOptions options;
  options.mayDie = {1};
  options.finalBarrier = false;
  options.deadline = std::chrono::seconds(60);
  auto body = [&](TransportRank& w) {
    ASSERT_TRUE(w.barrier().ok());
    if (w.rank() == 1) ::raise(SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let it die
    std::vector<uint8_t> in(1 << 20), out = payload(0, 1 << 20);
    TransferRequest reqs[2];
    Status started = w.peer(1).irecv(in.data(), in.size(), 9, &reqs[0]);
    if (started.ok()) started = w.peer(1).isend(out.data(), out.size(), 9, &reqs[1]);
    if (!started.ok()) reqs[0].done = reqs[1].done = true;
    Status waited = w.wait(reqs, 2, std::chrono::seconds(10));
    std::string how = !started.ok()          ? "start failed: " + started.toString()
                      : !reqs[0].status.ok() ? "receive failed: " + reqs[0].status.toString()
                      : !reqs[1].status.ok() ? "send failed: " + reqs[1].status.toString()
                                             : "wait: " + waited.toString();
    std::printf("[ %s ] dead peer -> %s\n", GetParam().label.c_str(), how.c_str());
    EXPECT_FALSE(started.ok() && waited.ok() && reqs[0].status.ok() && reqs[1].status.ok()) << how;
    // Clean up as a driver would: cancel, wait (bounded), abandon what is left.
    for (TransferRequest& r : reqs) w.transport().cancel(&r);
    (void)w.wait(reqs, 2, std::chrono::seconds(2));
    for (TransferRequest& r : reqs) w.transport().abandon(&r);
  };
  EXPECT_TRUE(run(2, body, options));
}

int openFds() {
  int n = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (::readdir(d) != nullptr) ++n;
    ::closedir(d);
  }
  return n;
}

TEST_P(Conformance, RepeatedSetupAndTeardownLeaksNothing) {
  // Two transports in one process talk to each other; rounds after the first (which may load
  // providers for good) must leave the process's descriptors as they found them.
  auto body = [&](TransportRank&) {
    int fdsAfterFirst = -1;
    for (int round = 0; round < 3; ++round) {
      std::unique_ptr<Transport> t[2];
      for (int r = 0; r < 2; ++r) {
        auto made = createTransport(GetParam().transport, TransportContext{r, 2, nullptr, {}});
        ASSERT_TRUE(made.ok()) << made.status().toString();
        t[r] = std::move(made).value();
      }
      auto c0 = t[0]->connect(1, t[1]->localAddress());
      auto c1 = t[1]->connect(0, t[0]->localAddress());
      ASSERT_TRUE(c0.ok() && c1.ok());
      std::vector<uint8_t> out = payload(round, 70000), in(70000);
      TransferRequest reqs[2];
      ASSERT_TRUE((*c1)->irecv(in.data(), in.size(), 1, &reqs[0]).ok());
      ASSERT_TRUE((*c0)->isend(out.data(), out.size(), 1, &reqs[1]).ok());
      auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
      while (!(reqs[0].done && reqs[1].done) && std::chrono::steady_clock::now() < until) {
        t[0]->progress();
        t[1]->progress();
      }
      ASSERT_TRUE(reqs[0].done && reqs[1].done);
      EXPECT_EQ(firstMismatch(in, round), SIZE_MAX);
      c0->reset();
      c1->reset();
      t[0].reset();
      t[1].reset();
      if (round == 0) fdsAfterFirst = openFds();
    }
    EXPECT_EQ(openFds(), fdsAfterFirst);
  };
  EXPECT_TRUE(run(1, body));
}

INSTANTIATE_TEST_SUITE_P(Transports, Conformance, ::testing::ValuesIn(transportCases()),
                         [](const auto& info) { return info.param.label; });

}  // namespace
}  // namespace plexus
