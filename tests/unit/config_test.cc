// Config::fromEnv: the pipeline chunk and whether the user chose it; the shm stores.
#include "src/config.h"

#include <gtest/gtest.h>

#include <utility>

#include "src/bootstrap/launch_env.h"

namespace plexus {
namespace {

TEST(Config, ThePipelineChunkIsTheDefaultUntilTheUserSetsIt) {
  auto cfg = Config::fromEnv(bootstrap::mapEnv({}));
  ASSERT_TRUE(cfg.ok()) << cfg.status().toString();
  EXPECT_EQ(cfg->chunkBytes, size_t{256} << 10);
  EXPECT_FALSE(cfg->chunkBytesExplicit);  // transports may raise it
  cfg = Config::fromEnv(bootstrap::mapEnv({{"PLEXUS_CHUNK_BYTES", "64k"}}));
  ASSERT_TRUE(cfg.ok()) << cfg.status().toString();
  EXPECT_EQ(cfg->chunkBytes, size_t{64} << 10);
  EXPECT_TRUE(cfg->chunkBytesExplicit);  // kept as set, below any transport's wish
}

TEST(Config, APipelineChunkOutOfRangeIsRejectedWithTheVariableNamed) {
  for (const char* bad : {"512", "2g", "lots"}) {
    auto cfg = Config::fromEnv(bootstrap::mapEnv({{"PLEXUS_CHUNK_BYTES", bad}}));
    ASSERT_FALSE(cfg.ok()) << bad;
    EXPECT_NE(cfg.status().message().find("PLEXUS_CHUNK_BYTES"), std::string::npos)
        << cfg.status().toString();
  }
}

TEST(Config, ShmStoresAreAutoUnlessSetAndAnUnknownModeIsRejected) {
  auto cfg = Config::fromEnv(bootstrap::mapEnv({}));
  ASSERT_TRUE(cfg.ok()) << cfg.status().toString();
  EXPECT_EQ(cfg->shmStores, ShmStores::kAuto);
  for (auto [text, mode] : {std::pair<const char*, ShmStores>{"plain", ShmStores::kPlain},
                            {"streaming", ShmStores::kStreaming},
                            {"auto", ShmStores::kAuto}}) {
    cfg = Config::fromEnv(bootstrap::mapEnv({{"PLEXUS_SHM_STORES", text}}));
    ASSERT_TRUE(cfg.ok()) << cfg.status().toString();
    EXPECT_EQ(cfg->shmStores, mode) << text;
  }
  cfg = Config::fromEnv(bootstrap::mapEnv({{"PLEXUS_SHM_STORES", "nt"}}));
  ASSERT_FALSE(cfg.ok());
  EXPECT_NE(cfg.status().message().find("PLEXUS_SHM_STORES='nt'"), std::string::npos)
      << cfg.status().toString();
}

TEST(Config, ShmMailboxesAreOnUnlessSetToZeroAndOtherValuesAreRejected) {
  auto cfg = Config::fromEnv(bootstrap::mapEnv({}));
  ASSERT_TRUE(cfg.ok()) << cfg.status().toString();
  EXPECT_TRUE(cfg->shmMailboxes);
  cfg = Config::fromEnv(bootstrap::mapEnv({{"PLEXUS_SHM_MAILBOXES", "0"}}));
  ASSERT_TRUE(cfg.ok()) << cfg.status().toString();
  EXPECT_FALSE(cfg->shmMailboxes);
  cfg = Config::fromEnv(bootstrap::mapEnv({{"PLEXUS_SHM_MAILBOXES", "1"}}));
  ASSERT_TRUE(cfg.ok()) << cfg.status().toString();
  EXPECT_TRUE(cfg->shmMailboxes);
  cfg = Config::fromEnv(bootstrap::mapEnv({{"PLEXUS_SHM_MAILBOXES", "yes"}}));
  ASSERT_FALSE(cfg.ok());
  EXPECT_NE(cfg.status().message().find("PLEXUS_SHM_MAILBOXES='yes'"), std::string::npos)
      << cfg.status().toString();
}

}  // namespace
}  // namespace plexus
