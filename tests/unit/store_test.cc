// The rendezvous store over real loopback sockets: operations across clients, blocking gets and
// their timeouts, hello rejections, and hostile peers that must not disturb legitimate ones.
#include "src/bootstrap/store.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "src/bootstrap/socket.h"
#include "src/bootstrap/store_protocol.h"
#include "src/bootstrap/store_table.h"

namespace plexus::bootstrap {
namespace {

using namespace std::chrono_literals;

constexpr auto kConnectTimeout = 5s;
const Secret kSecret = secretFromString("store-test-secret");

std::vector<uint8_t> bytesOf(const std::string& s) { return {s.begin(), s.end()}; }

std::unique_ptr<StoreServer> startServer(int worldSize, StoreServerOptions options = {}) {
  auto server = StoreServer::start("127.0.0.1", 0, kSecret, worldSize, options);
  EXPECT_TRUE(server.ok()) << server.status().toString();
  return server.ok() ? std::move(server.value()) : nullptr;
}

std::unique_ptr<StoreClient> connectClient(const StoreServer& server, int rank, int worldSize) {
  auto client =
      StoreClient::connect("127.0.0.1", server.port(), kSecret, rank, worldSize, kConnectTimeout);
  EXPECT_TRUE(client.ok()) << client.status().toString();
  return client.ok() ? std::move(client.value()) : nullptr;
}

// A raw TCP connection to the server, for peers that do not speak the protocol.
UniqueFd rawConnect(uint16_t port) {
  auto address = parseIpv4("127.0.0.1", port);
  EXPECT_TRUE(address.ok());
  auto fd = connectTcp(*address, Clock::now() + kConnectTimeout);
  EXPECT_TRUE(fd.ok()) << fd.status().toString();
  return fd.ok() ? std::move(fd.value()) : UniqueFd();
}

// True when the server closes `fd` within the timeout (reading and discarding anything it says).
bool closedByServer(int fd, std::chrono::milliseconds timeout = 5000ms) {
  const Clock::time_point deadline = Clock::now() + timeout;
  uint8_t scratch[256];
  while (Clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, pollTimeoutMs(deadline)) <= 0) continue;
    ssize_t n = ::recv(fd, scratch, sizeof(scratch), 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return true;
  }
  return false;
}

TEST(SecretTest, HexIsTakenAsIsAndTextIsHashed) {
  Secret hex = secretFromString(std::string(62, '0') + "Ff");
  EXPECT_EQ(hex[31], 0xff);
  EXPECT_EQ(hex[0], 0);
  // SHA-256("abc"), the FIPS 180-2 example.
  Secret abc = secretFromString("abc");
  EXPECT_EQ(abc[0], 0xba);
  EXPECT_EQ(abc[1], 0x78);
  EXPECT_EQ(abc[31], 0xad);
  EXPECT_EQ(secretFromString("job-1"), secretFromString("job-1"));
  EXPECT_NE(secretFromString("job-1"), secretFromString("job-2"));
  auto a = randomSecret(), b = randomSecret();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);
}

TEST(StoreTest, SetGetAddAcrossClients) {
  constexpr int kRanks = 6;
  constexpr int kAdds = 50;
  auto server = startServer(kRanks);
  ASSERT_NE(server, nullptr);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int rank = 0; rank < kRanks; ++rank) {
    threads.emplace_back([&, rank] {
      auto client = connectClient(*server, rank, kRanks);
      if (!client) return void(++failures);
      if (!client->set("addr/" + std::to_string(rank), bytesOf("rank" + std::to_string(rank)))
               .ok()) {
        ++failures;
      }
      for (int i = 0; i < kAdds; ++i) {
        if (!client->add("counter", 1).ok()) ++failures;
      }
      for (int peer = 0; peer < kRanks; ++peer) {
        auto value = client->get("addr/" + std::to_string(peer), 5000ms);
        if (!value.ok() || *value != bytesOf("rank" + std::to_string(peer))) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  auto client = connectClient(*server, 0, kRanks);  // rank 0's first client has left
  ASSERT_NE(client, nullptr);
  auto total = client->add("counter", 0);
  ASSERT_TRUE(total.ok()) << total.status().toString();
  EXPECT_EQ(*total, kRanks * kAdds);
  auto text = client->get("counter", 1000ms);  // counters read back as decimal text
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, bytesOf(std::to_string(kRanks * kAdds)));
  EXPECT_EQ(client->add("addr/1", 1).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(server->rejectedConnections(), 0u);
}

TEST(StoreTest, GetWaitsUntilAnotherClientSets) {
  auto server = startServer(2);
  ASSERT_NE(server, nullptr);
  auto writer = connectClient(*server, 1, 2);
  ASSERT_NE(writer, nullptr);
  std::vector<uint8_t> big(1 << 20);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<uint8_t>(i * 7);
  StatusOr<std::vector<uint8_t>> got = internalError("not run");
  std::thread reader([&] {
    auto client = connectClient(*server, 0, 2);
    if (client) got = client->get("late", 10000ms);
  });
  std::this_thread::sleep_for(50ms);  // usually lets the get park first; correct either way
  ASSERT_TRUE(writer->set("late", big).ok());
  reader.join();
  ASSERT_TRUE(got.ok()) << got.status().toString();
  EXPECT_EQ(*got, big);
}

TEST(StoreTest, GetTimesOutNamingTheKeyAndClientStaysUsable) {
  auto server = startServer(2);
  ASSERT_NE(server, nullptr);
  auto a = connectClient(*server, 0, 2);
  auto b = connectClient(*server, 1, 2);
  ASSERT_TRUE(a && b);
  auto start = Clock::now();
  auto missing = a->get("rank1/address", 200ms);
  EXPECT_LT(Clock::now() - start, 3s);
  ASSERT_EQ(missing.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_NE(missing.status().message().find("rank1/address"), std::string::npos);
  // The abandoned get must not answer a later request of the same client.
  ASSERT_TRUE(b->set("rank1/address", bytesOf("late")).ok());
  ASSERT_TRUE(b->set("other", bytesOf("fresh")).ok());
  auto other = a->get("other", 2000ms);
  ASSERT_TRUE(other.ok()) << other.status().toString();
  EXPECT_EQ(*other, bytesOf("fresh"));
  auto late = a->get("rank1/address", 2000ms);
  ASSERT_TRUE(late.ok());
  EXPECT_EQ(*late, bytesOf("late"));
}

TEST(StoreTest, RejectsWrongSecretWorldSizeMismatchBadAndDuplicateRank) {
  auto server = startServer(4);
  ASSERT_NE(server, nullptr);
  auto wrong = StoreClient::connect("127.0.0.1", server->port(), secretFromString("other job"), 0,
                                    4, kConnectTimeout);
  ASSERT_EQ(wrong.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(wrong.status().message().find("secret"), std::string::npos);

  auto mismatch = StoreClient::connect("127.0.0.1", server->port(), kSecret, 2, 3, kConnectTimeout);
  ASSERT_EQ(mismatch.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(mismatch.status().message().find(
                "rank 2 says the world has 3 ranks but the store was started for 4"),
            std::string::npos)
      << mismatch.status().message();

  auto outside = StoreClient::connect("127.0.0.1", server->port(), kSecret, 4, 4, kConnectTimeout);
  ASSERT_EQ(outside.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(outside.status().message().find("outside [0, 4)"), std::string::npos);

  auto first = connectClient(*server, 1, 4);
  ASSERT_NE(first, nullptr);
  auto again = StoreClient::connect("127.0.0.1", server->port(), kSecret, 1, 4, kConnectTimeout);
  ASSERT_EQ(again.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(again.status().message().find("rank 1 is already connected"), std::string::npos);
  EXPECT_EQ(server->rejectedConnections(), 4u);
  // The first rank 1 is unaffected, and once it leaves the rank may connect again.
  EXPECT_TRUE(first->set("k", bytesOf("v")).ok());
  first.reset();
  auto deadline = Clock::now() + 5s;
  StatusOr<std::unique_ptr<StoreClient>> back = internalError("not tried");
  do {  // the server notices the departure asynchronously
    back = StoreClient::connect("127.0.0.1", server->port(), kSecret, 1, 4, kConnectTimeout);
    if (!back.ok()) std::this_thread::sleep_for(20ms);
  } while (!back.ok() && Clock::now() < deadline);
  EXPECT_TRUE(back.ok()) << back.status().toString();
}

TEST(StoreTest, HostilePeersAreDroppedWhileLegitimateClientsWork) {
  StoreServerOptions options;
  options.helloTimeout = 300ms;  // so the silent peer below is dropped quickly
  auto server = startServer(2, options);
  ASSERT_NE(server, nullptr);
  auto legit = connectClient(*server, 0, 2);
  ASSERT_NE(legit, nullptr);
  const auto deadline = Clock::now() + 5s;

  UniqueFd http = rawConnect(server->port());
  std::string get = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
  ASSERT_TRUE(sendAll(http.get(), bytesOf(get), deadline).ok());

  UniqueFd noise = rawConnect(server->port());
  std::mt19937 rng(1234);
  std::vector<uint8_t> random(4096);
  for (auto& b : random) b = static_cast<uint8_t>(rng());
  random[0] = 0x17;  // not 'P', whatever the generator says
  ASSERT_TRUE(sendAll(noise.get(), random, deadline).ok());

  // A frame header with the right magic announcing a 4 GiB hello.
  UniqueFd huge = rawConnect(server->port());
  std::vector<uint8_t> header = {'P', 'L', 'X', 'S', 1, 0, 1, 0, 0xff, 0xff, 0xff, 0xff};
  ASSERT_TRUE(sendAll(huge.get(), header, deadline).ok());

  // A correct hello followed by a set frame over the size limit: dropped after the hello too.
  UniqueFd oversized = rawConnect(server->port());
  std::vector<uint8_t> frames;
  wire::appendHello(frames, wire::Hello{kSecret, 1, 2});
  const uint64_t tooBig = wire::kMaxPayloadBytes + 1;
  std::vector<uint8_t> bigHeader = {'P', 'L', 'X', 'S', 1, 0, 2, 0};
  for (int i = 0; i < 4; ++i) bigHeader.push_back(static_cast<uint8_t>(tooBig >> (8 * i)));
  frames.insert(frames.end(), bigHeader.begin(), bigHeader.end());
  ASSERT_TRUE(sendAll(oversized.get(), frames, deadline).ok());

  UniqueFd silent = rawConnect(server->port());

  EXPECT_TRUE(closedByServer(http.get()));
  EXPECT_TRUE(closedByServer(noise.get()));
  EXPECT_TRUE(closedByServer(huge.get()));
  EXPECT_TRUE(closedByServer(oversized.get()));
  EXPECT_TRUE(closedByServer(silent.get()));
  // Counted: the four that never completed a hello (the oversized one had been accepted).
  EXPECT_EQ(server->rejectedConnections(), 4u);

  ASSERT_TRUE(legit->set("still", bytesOf("working")).ok());
  auto value = legit->get("still", 1000ms);
  ASSERT_TRUE(value.ok()) << value.status().toString();
  EXPECT_EQ(*value, bytesOf("working"));
  auto other = connectClient(*server, 1, 2);  // rank 1's slot was freed by the dropped peer
  ASSERT_NE(other, nullptr);
  EXPECT_TRUE(other->add("n", 2).ok());
}

TEST(StoreTest, ConnectWithoutServerTimesOut) {
  // A bound socket that never listens: connects are refused and nobody else gets the port.
  auto address = parseIpv4("127.0.0.1", 0);
  ASSERT_TRUE(address.ok());
  UniqueFd holder(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_EQ(::bind(holder.get(), reinterpret_cast<const sockaddr*>(&*address), sizeof(*address)),
            0);
  auto port = localPort(holder.get());
  ASSERT_TRUE(port.ok());
  auto start = Clock::now();
  auto client = StoreClient::connect("127.0.0.1", *port, kSecret, 0, 1, 300ms);
  auto elapsed = Clock::now() - start;
  ASSERT_EQ(client.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_NE(client.status().message().find(std::to_string(*port)), std::string::npos);
  EXPECT_LT(elapsed, 2s);
}

TEST(StoreTest, ServerThatDisappearsIsUnavailable) {
  auto server = startServer(1);
  ASSERT_NE(server, nullptr);
  auto client = connectClient(*server, 0, 1);
  ASSERT_NE(client, nullptr);
  server.reset();
  EXPECT_EQ(client->set("k", bytesOf("v")).code(), StatusCode::kUnavailable);
  EXPECT_EQ(client->get("k", 1000ms).status().code(), StatusCode::kUnavailable);
}

TEST(StoreTest, ClientChecksSizesAndServerBindsOnlyWhatItIsTold) {
  auto server = startServer(0);  // 0: any rank, any world size
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(server->address(), "127.0.0.1");
  auto client = connectClient(*server, 7, 100);
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(client->set(std::string(kMaxKeyBytes + 1, 'k'), {}).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(client->set("v", std::vector<uint8_t>(kMaxValueBytes + 1)).code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(client->set(std::string(kMaxKeyBytes, 'k'), {}).ok());
  EXPECT_EQ(StoreServer::start("", 0, kSecret, 1).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(StoreServer::start("localhost", 0, kSecret, 1).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(StoreTest, EraseRemovesAKeyAndAbsentKeysAreFine) {
  auto server = startServer(2);
  ASSERT_NE(server, nullptr);
  auto a = connectClient(*server, 0, 2), b = connectClient(*server, 1, 2);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(a->set("split0/0", bytesOf("record")).ok());
  ASSERT_TRUE(b->get("split0/0", 1000ms).ok());
  ASSERT_TRUE(a->erase("split0/0").ok());
  ASSERT_TRUE(a->erase("split0/0").ok());  // absent: nothing to do
  EXPECT_EQ(b->get("split0/0", 100ms).status().code(), StatusCode::kDeadlineExceeded);
  ASSERT_TRUE(b->set("split0/0", bytesOf("again")).ok());  // a key can come back
  auto again = a->get("split0/0", 1000ms);
  ASSERT_TRUE(again.ok()) << again.status().toString();
  EXPECT_EQ(*again, bytesOf("again"));
  EXPECT_EQ(a->erase(std::string(kMaxKeyBytes + 1, 'k')).code(), StatusCode::kInvalidArgument);
}

TEST(StoreTableTest, EraseRemovesOnlyThatKey) {
  StoreTable table;
  ASSERT_TRUE(table.set("a", bytesOf("1")).ok());
  ASSERT_TRUE(table.set("b", bytesOf("2")).ok());
  table.erase("a");
  table.erase("absent");
  EXPECT_EQ(table.find("a"), nullptr);
  ASSERT_NE(table.find("b"), nullptr);
  EXPECT_EQ(table.size(), 1u);
  // A get parked on an erased key stays parked until the key is set again.
  ASSERT_TRUE(table.park("a", StoreTable::Waiter{1, 1}).ok());
  auto woken = table.set("a", bytesOf("3"));
  ASSERT_TRUE(woken.ok());
  EXPECT_EQ(woken->size(), 1u);
}

TEST(StoreTableTest, ParkSetCancelAndCounters) {
  StoreTable table;
  using W = StoreTable::Waiter;
  EXPECT_EQ(table.find("k"), nullptr);
  ASSERT_TRUE(table.park("k", W{1, 10}).ok());
  ASSERT_TRUE(table.park("k", W{2, 20}).ok());
  ASSERT_TRUE(table.park("k", W{3, 30}).ok());
  table.cancel(W{2, 20});
  table.forgetConnection(3);
  auto woken = table.set("k", bytesOf("v"));
  ASSERT_TRUE(woken.ok());
  EXPECT_EQ(*woken, (std::vector<W>{W{1, 10}}));
  ASSERT_NE(table.find("k"), nullptr);
  EXPECT_EQ(*table.find("k"), bytesOf("v"));
  for (uint32_t i = 0; i < kMaxParkedGets; ++i) EXPECT_TRUE(table.park("x", W{4, i}).ok());
  EXPECT_EQ(table.park("y", W{4, 99}).code(), StatusCode::kInvalidArgument);
  std::vector<W> fromAdd;
  auto sum = table.add("x", 5, &fromAdd);
  ASSERT_TRUE(sum.ok());
  EXPECT_EQ(*sum, 5);
  EXPECT_EQ(fromAdd.size(), kMaxParkedGets);
  EXPECT_TRUE(table.park("y", W{4, 99}).ok());  // the woken gets no longer count
  EXPECT_EQ(table.add("k", 1, &fromAdd).status().code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(table.add("x", INT64_MAX - 5, &fromAdd).ok());
  EXPECT_EQ(table.add("x", 1, &fromAdd).status().code(), StatusCode::kInvalidArgument);
}

TEST(StoreProtocolTest, ParserRejectsEarlyAndNeverOverreads) {
  using State = wire::ParseResult::State;
  const std::vector<uint8_t> g = {'G'};
  EXPECT_EQ(wire::parseFrame(g, 100).state, State::kMalformed);
  EXPECT_EQ(wire::parseFrame({}, 100).state, State::kNeedMore);
  std::vector<uint8_t> frame;
  wire::appendRequest(frame, wire::FrameType::kSet, 9, "key", bytesOf("value"));
  for (size_t cut = 0; cut < frame.size(); ++cut) {
    EXPECT_EQ(wire::parseFrame(std::span(frame).first(cut), 100).state, State::kNeedMore);
  }
  auto r = wire::parseFrame(frame, 100);
  ASSERT_EQ(r.state, State::kFrame);
  EXPECT_EQ(r.consumed, frame.size());
  auto request = wire::decodeRequest(r.frame);
  ASSERT_TRUE(request.ok());
  EXPECT_EQ(request->id, 9u);
  EXPECT_EQ(request->key, "key");
  EXPECT_EQ(std::vector<uint8_t>(request->value.begin(), request->value.end()), bytesOf("value"));
  EXPECT_EQ(wire::parseFrame(frame, 10).state, State::kMalformed);  // over the caller's cap
  // A key length pointing past the payload.
  std::vector<uint8_t> lying;
  wire::appendRequest(lying, wire::FrameType::kGet, 1, "abc");
  lying[16] = 200;
  auto lie = wire::parseFrame(lying, 100);
  ASSERT_EQ(lie.state, State::kFrame);
  EXPECT_FALSE(wire::decodeRequest(lie.frame).ok());
  EXPECT_FALSE(wire::decodeHello(lie.frame).ok());
  EXPECT_FALSE(wire::decodeReply(lie.frame).ok());
}

}  // namespace
}  // namespace plexus::bootstrap
