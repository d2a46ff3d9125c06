#include "src/bootstrap/job_store.h"

#include <arpa/inet.h>
#include <netdb.h>

#include <memory>

namespace plexus::bootstrap {

StatusOr<std::string> storeBindAddress(const std::string& configured,
                                       const std::string& storeHost) {
  if (!configured.empty()) return configured;
  if (storeHost.empty() || storeHost == "localhost") return std::string("127.0.0.1");
  in_addr addr{};
  if (inet_pton(AF_INET, storeHost.c_str(), &addr) == 1) return storeHost;
  addrinfo hints{};
  hints.ai_family = AF_INET;
  addrinfo* raw = nullptr;
  if (getaddrinfo(storeHost.c_str(), nullptr, &hints, &raw) != 0 || raw == nullptr) {
    return invalidArgument("cannot resolve the store host '" + storeHost +
                           "' (MASTER_ADDR); set PLEXUS_BIND_ADDR to this host's address");
  }
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> res(raw, freeaddrinfo);
  char text[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(res->ai_addr)->sin_addr, text, sizeof(text));
  return std::string(text);
}

StatusOr<std::unique_ptr<StoreServer>> hostStoreIfRankZero(const LaunchInfo& launch,
                                                           const std::string& bindAddress) {
  if (launch.rank != 0 || launch.storeHostedByLauncher) return std::unique_ptr<StoreServer>();
  auto bind = storeBindAddress(bindAddress, launch.storeHost);
  PLEXUS_TRY(bind.status());
  auto server =
      StoreServer::start(*bind, launch.storePort, secretFromString(launch.secret), launch.size);
  if (!server.ok()) {
    return server.status().withContext("rank 0 could not host the rendezvous store on " + *bind +
                                       ":" + std::to_string(launch.storePort) +
                                       " (is MASTER_PORT free?)");
  }
  return server;
}

StatusOr<JobStore> joinJobStore(const LaunchInfo& launch, const std::string& bindAddress,
                                std::chrono::milliseconds timeout) {
  JobStore store;
  auto server = hostStoreIfRankZero(launch, bindAddress);
  PLEXUS_TRY(server.status());
  store.server = std::move(server).value();
  auto client =
      StoreClient::connect(launch.storeHost, launch.storePort, secretFromString(launch.secret),
                           launch.rank, launch.size, timeout);
  if (!client.ok()) {
    return client.status().withContext("rank " + std::to_string(launch.rank) +
                                       " joining the store at " + launch.storeHost + ":" +
                                       std::to_string(launch.storePort));
  }
  store.client = std::move(client).value();
  return store;
}

}  // namespace plexus::bootstrap
